//! Image edits: an ordered list of operations (crop, resize, rotate, flip, filter, remove
//! background) applied to a stored image, producing a new image whose `parent_id` is the source.
//! Every operation is checked before any work is done; a failure names `operations[i].field`.

use std::sync::Arc;

use bytes::Bytes;
use image::RgbaImage;

use super::pipeline::StoredVariant;
use super::{App, new_id, now_ms};
use crate::db::ImageRow;
use crate::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::imaging;
use crate::plugins::CallError;
use crate::plugins::runtime::types;

/// Most operations in one edit.
pub const MAX_OPERATIONS: usize = 20;

/// One edit operation (validated shapes; ranges are checked by [`App::edit_image`]).
#[derive(Clone, Debug)]
pub enum EditOp {
    /// Keep a rectangle of the current image.
    Crop {
        /// Left edge, pixels.
        x: i64,
        /// Top edge, pixels.
        y: i64,
        /// Width, pixels.
        width: i64,
        /// Height, pixels.
        height: i64,
    },
    /// Scale to exactly this size (Lanczos3).
    Resize {
        /// Pixels.
        width: i64,
        /// Pixels.
        height: i64,
    },
    /// Rotate clockwise.
    Rotate {
        /// 90, 180 or 270 (-90 = 270).
        degrees: i64,
    },
    /// Mirror the image.
    Flip {
        /// `horizontal` or `vertical`.
        direction: String,
    },
    /// Apply a filter from `/v1/filters`.
    Filter {
        /// Filter id.
        name: String,
        /// 0..=1, default 1.
        intensity: Option<f64>,
        /// The filter's JSON parameter object.
        params: Option<serde_json::Value>,
    },
    /// Make a plain background transparent.
    RemoveBackground {
        /// Colour distance counted as background, 0..=1.
        tolerance: Option<f64>,
        /// Soft edge, 0..=8 pixels.
        feather: Option<i64>,
    },
}

fn field(i: usize, name: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: format!("operations[{i}].{name}"), message: message.into() }
}

impl App {
    /// Apply `ops` to image `id` and store the result as a new image.
    #[tracing::instrument(skip_all, fields(image_id = %id, operations = ops.len()))]
    pub async fn edit_image(
        &self,
        principal: &crate::auth::Principal,
        id: &str,
        ops: Vec<EditOp>,
        output_format: Option<String>,
        idempotency: Option<&super::Idempotency>,
    ) -> AppResult<ImageRow> {
        let source = self.get_image(principal, id).await?;
        if let Some(idem) = idempotency
            && let Some(replay) = self.db.idempotent_replay(&idem.db_key(now_ms())).await?
        {
            return self.get_image(principal, &idem.check(replay)?).await;
        }
        let mut errors = Vec::new();
        if ops.is_empty() || ops.len() > MAX_OPERATIONS {
            errors.push(FieldError {
                field: "operations".into(),
                message: format!("give 1 to {MAX_OPERATIONS} operations, got {}", ops.len()),
            });
        }
        let format = match output_format.as_deref() {
            None => imaging::Format::parse(&source.format).unwrap_or(imaging::Format::Png),
            Some(f) => imaging::Format::parse(f).unwrap_or_else(|| {
                errors.push(FieldError {
                    field: "output_format".into(),
                    message: format!("must be png, jpeg or webp; got {f:?}"),
                });
                imaging::Format::Png
            }),
        };
        let catalog = self.plugins.catalog();
        let max_side = i64::from(imaging::MAX_SIDE) * 2;
        // The image's size after each operation, so crops are checked against the image they
        // will cut, before any work is done.
        let (mut w, mut h) = (source.width, source.height);
        for (i, op) in ops.iter().enumerate() {
            match op {
                EditOp::Crop { x, y, width, height } => {
                    let before = errors.len();
                    for (name, v, min) in [("x", x, 0), ("y", y, 0), ("width", width, 1), ("height", height, 1)] {
                        if *v < min || *v > max_side {
                            errors.push(field(i, name, format!("must be {min} to {max_side}, got {v}")));
                        }
                    }
                    if errors.len() == before {
                        for (name, offset, extent, side) in [("x", x, width, w), ("y", y, height, h)] {
                            if offset + extent > side {
                                let what = if *offset >= side {
                                    name
                                } else if name == "x" {
                                    "width"
                                } else {
                                    "height"
                                };
                                errors.push(field(
                                    i,
                                    what,
                                    format!(
                                        "the rectangle {width}x{height} at ({x}, {y}) does not fit in the {w}x{h} image"
                                    ),
                                ));
                                break;
                            }
                        }
                        (w, h) = (*width, *height);
                    }
                }
                EditOp::Resize { width, height } => {
                    let before = errors.len();
                    for (name, v) in [("width", width), ("height", height)] {
                        if !(1..=max_side).contains(v) {
                            errors.push(field(i, name, format!("must be 1 to {max_side}, got {v}")));
                        }
                    }
                    if errors.len() == before {
                        if (width * height) as u64 > self.config.limits.max_pixels {
                            errors.push(field(i, "width", format!("{width}x{height} exceeds the pixel limit")));
                        }
                        (w, h) = (*width, *height);
                    }
                }
                EditOp::Rotate { degrees } => {
                    if ![90, 180, 270, -90].contains(degrees) {
                        errors.push(field(i, "degrees", format!("must be 90, 180 or 270, got {degrees}")));
                    } else if degrees.rem_euclid(180) == 90 {
                        (w, h) = (h, w);
                    }
                }
                EditOp::Flip { direction } => {
                    if direction != "horizontal" && direction != "vertical" {
                        errors.push(field(
                            i,
                            "direction",
                            format!("must be horizontal or vertical, got {direction:?}"),
                        ));
                    }
                }
                EditOp::Filter { name, intensity, params } => {
                    if catalog.filter(name).is_none() {
                        errors.push(field(
                            i,
                            "name",
                            format!("{name:?} is not a known filter; GET /v1/filters lists them"),
                        ));
                    }
                    if let Some(v) = intensity
                        && !(0.0..=1.0).contains(v)
                    {
                        errors.push(field(i, "intensity", format!("must be 0 to 1, got {v}")));
                    }
                    if params.as_ref().is_some_and(|p| !p.is_object()) {
                        errors.push(field(i, "params", "must be a JSON object"));
                    }
                }
                EditOp::RemoveBackground { tolerance, feather } => {
                    if catalog.default_cropper().is_none() {
                        errors.push(field(i, "type", "needs a cropper plugin, and none is loaded"));
                    }
                    if let Some(t) = tolerance
                        && !(0.0..=1.0).contains(t)
                    {
                        errors.push(field(i, "tolerance", format!("must be 0 to 1, got {t}")));
                    }
                    if let Some(f) = feather
                        && !(0..=8).contains(f)
                    {
                        errors.push(field(i, "feather", format!("must be 0 to 8, got {f}")));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }

        let bytes = self.blobs.get(&source.blob_key).await?;
        let max_pixels = self.config.limits.max_pixels;
        let mut img = blocking(move || {
            imaging::decode(&bytes, max_pixels).map_err(|e| AppError::Internal(e.context("decoding the source image")))
        })
        .await??;
        let mut transparent = false;
        for (i, op) in ops.into_iter().enumerate() {
            img = match op {
                EditOp::Crop { x, y, width, height } => {
                    let (x, y, w, h) = (x as u32, y as u32, width as u32, height as u32);
                    if u64::from(x) + u64::from(w) > u64::from(img.width())
                        || u64::from(y) + u64::from(h) > u64::from(img.height())
                    {
                        return Err(AppError::Validation(vec![field(
                            i,
                            "width",
                            format!(
                                "the rectangle {w}x{h} at ({x}, {y}) does not fit in the {}x{} image",
                                img.width(),
                                img.height()
                            ),
                        )]));
                    }
                    imaging::crop(&img, (x, y, w, h))
                }
                EditOp::Resize { width, height } => {
                    let (w, h) = (width as u32, height as u32);
                    blocking(move || imaging::resize(&img, w, h).map_err(AppError::Internal)).await??
                }
                EditOp::Rotate { degrees } => match degrees.rem_euclid(360) {
                    90 => image::imageops::rotate90(&img),
                    180 => image::imageops::rotate180(&img),
                    _ => image::imageops::rotate270(&img),
                },
                EditOp::Flip { direction } => {
                    if direction == "horizontal" {
                        image::imageops::flip_horizontal(&img)
                    } else {
                        image::imageops::flip_vertical(&img)
                    }
                }
                EditOp::Filter { name, intensity, params } => {
                    let (plugin, _) = catalog.filter(&name).expect("checked above");
                    let params = params.map_or_else(|| "{}".to_string(), |p| p.to_string());
                    let out = plugin
                        .apply_filter(name, to_wit(&img), intensity.unwrap_or(1.0) as f32, params)
                        .await
                        .map_err(|e| op_error(i, "params", e))?;
                    from_wit(out, &img)?
                }
                EditOp::RemoveBackground { tolerance, feather } => {
                    let cropper = catalog.default_cropper().expect("checked above");
                    let mut options = serde_json::Map::new();
                    if let Some(t) = tolerance {
                        options.insert("tolerance".into(), t.into());
                    }
                    if let Some(f) = feather {
                        options.insert("feather".into(), f.into());
                    }
                    let options = serde_json::Value::Object(options).to_string();
                    let out =
                        cropper.remove_background(to_wit(&img), options).await.map_err(|e| op_error(i, "type", e))?;
                    transparent = true;
                    from_wit(out, &img)?
                }
            };
        }
        let format = if transparent && format == imaging::Format::Jpeg { imaging::Format::Png } else { format };
        let new = new_id("img");
        let key = format!("images/edits/{new}.{}", format.as_str());
        let (width, height) = img.dimensions();
        let img = Arc::new(img);
        let encoded = blocking(move || imaging::encode(&img, format, 90).map_err(AppError::Internal)).await??;
        let size = encoded.len() as i64;
        self.blobs.put(&key, Bytes::from(encoded)).await?;
        let variant = StoredVariant { key: key.clone(), width, height, format: format.as_str().into(), bytes: size };
        let mut variants = std::collections::BTreeMap::new();
        variants.insert("cropped", variant);
        let row = ImageRow {
            id: new,
            generation_id: None,
            owner_id: source.owner_id.clone(),
            position: 0,
            blob_key: key,
            width: i64::from(width),
            height: i64::from(height),
            format: format.as_str().into(),
            bytes: size,
            seed: source.seed,
            prompt: source.prompt.clone(),
            negative_prompt: source.negative_prompt.clone(),
            model: source.model.clone(),
            aspect_ratio: None,
            metadata_json: source.metadata_json.clone(),
            created_at: now_ms(),
            variants_json: serde_json::to_string(&variants).map_err(anyhow::Error::from)?,
            parent_id: Some(source.id.clone()),
            style: source.style.clone(),
            archetype: source.archetype.clone(),
        };
        match idempotency {
            None => self.db.insert_image(&row).await?,
            Some(idem) => {
                if let Some(replay) = self.db.insert_image_once(&row, &idem.db_key(now_ms())).await? {
                    // A concurrent request with the same key stored its image first.
                    if let Err(e) = self.blobs.delete(&row.blob_key).await {
                        tracing::warn!(error = ?e, key = %row.blob_key, "removing a duplicate edit's file failed");
                    }
                    return self.get_image(principal, &idem.check(replay)?).await;
                }
            }
        }
        tracing::info!(new_image = %row.id, "image edited");
        Ok(row)
    }

    /// Images edited from `id`, oldest first.
    pub async fn image_edits(&self, principal: &crate::auth::Principal, id: &str) -> AppResult<Vec<ImageRow>> {
        self.get_image(principal, id).await?;
        let edits = self.db.edits_of(id).await?;
        Ok(edits.into_iter().filter(|e| principal.sees(e.owner_id.as_deref())).collect())
    }
}

fn to_wit(img: &RgbaImage) -> types::Image {
    types::Image { width: img.width(), height: img.height(), pixels: img.as_raw().clone() }
}

fn from_wit(out: types::Image, input: &RgbaImage) -> AppResult<RgbaImage> {
    if (out.width, out.height) != input.dimensions() {
        return Err(AppError::coded(ErrorCode::PluginError, "the plugin changed the image size"));
    }
    RgbaImage::from_raw(out.width, out.height, out.pixels)
        .ok_or_else(|| AppError::coded(ErrorCode::PluginError, "the plugin returned a malformed image"))
}

/// A plugin's refusal of its input is the client's error (422, naming the operation); a crash is ours.
fn op_error(i: usize, name: &str, e: CallError) -> AppError {
    match e {
        CallError::Plugin { kind: "invalid_input", message } => AppError::Validation(vec![field(i, name, message)]),
        other => AppError::coded(ErrorCode::PluginError, format!("operations[{i}]: {other}")),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| AppError::Internal(anyhow::anyhow!("image task failed: {e}")))
}
