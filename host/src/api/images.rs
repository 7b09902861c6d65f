//! `/v1/images`: image records and their files.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, ResponseContent, Union};
use serde::Deserialize;

use super::body::JsonBody;
use crate::service::edits::EditOp;

use super::generations::ts;
use super::problem::ApiError;
use super::{Tag, app};
use crate::auth::Principal;
use crate::db::ImageRow;
use crate::imaging::Format;
use crate::service::App;

/// Image operations.
pub struct ImagesApi {
    pub(crate) app: Option<App>,
}

/// One stored file of an image.
#[derive(Debug, Clone, Object)]
pub struct ImageVariant {
    /// Download link: absolute under the server's `public_url` when the operator set one,
    /// else relative to the server (`/v1/images/{id}/file?variant=…`).
    pub url: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    /// File size in bytes.
    pub bytes: i64,
    /// This file's bytes, base64 (standard alphabet, padded), when the generation asked for
    /// `return_base64` and has succeeded; null otherwise.
    pub base64: Option<String>,
}

/// The variants of an image.
#[derive(Debug, Clone, Object)]
pub struct ImageVariants {
    /// As the provider drew it (before the exact-ratio crop).
    pub original: Option<ImageVariant>,
    /// Cropped to the exact ratio (and resized to an explicit size): the main image.
    pub cropped: Option<ImageVariant>,
    /// The cropped image with its plain background made transparent (PNG), when asked for.
    pub transparent: Option<ImageVariant>,
}

impl ImageVariants {
    /// The variants by name, in a fixed order, for filling them one by one.
    pub(crate) fn named_mut(&mut self) -> [(&'static str, Option<&mut ImageVariant>); 3] {
        [
            ("original", self.original.as_mut()),
            ("cropped", self.cropped.as_mut()),
            ("transparent", self.transparent.as_mut()),
        ]
    }
}

/// A stored image.
#[derive(Debug, Clone, Object)]
pub struct Image {
    /// `img_…`.
    pub id: String,
    /// The generation that made it.
    pub generation_id: Option<String>,
    /// Download link of the main file: `{public_url}/v1/images/{id}/file` when the operator
    /// set `public_url`, else relative to the server (`/v1/images/{id}/file`).
    pub url: String,
    /// Variant links (absolute or relative like `url`).
    pub variants: ImageVariants,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Stored format: `png`, `jpeg` or `webp`.
    pub format: String,
    /// Size of the stored file in bytes.
    pub bytes: i64,
    /// The seed that produced it.
    pub seed: Option<i64>,
    /// The prompt.
    pub prompt: Option<String>,
    /// The negative prompt.
    pub negative_prompt: Option<String>,
    /// `provider/model`.
    pub model: Option<String>,
    /// Exact ratio, `"W:H"`.
    pub aspect_ratio: Option<String>,
    /// Your metadata.
    pub metadata: serde_json::Value,
    /// Style template used.
    pub style: Option<String>,
    /// Archetype used.
    pub archetype: Option<String>,
    /// The image this one was edited from.
    pub parent_id: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// The main file's bytes, base64, when the generation asked for `return_base64` (the
    /// same as `variants.cropped.base64`; every variant carries its own).
    pub base64: Option<String>,
}

impl Image {
    /// The API form of a stored image, its links under `base` (`public_url`, or `""` for
    /// links relative to the server; see [`super::link`]).
    pub fn from_row(r: ImageRow, base: &str) -> Self {
        let path = format!("/v1/images/{}/file", r.id);
        let url = format!("{base}{path}");
        let stored = stored_variants(&r);
        let variant = |name: &str| {
            stored.get(name).map(|v| ImageVariant {
                url: format!("{url}?variant={name}"),
                width: v.width,
                height: v.height,
                format: v.format.clone(),
                bytes: v.bytes,
                base64: None,
            })
        };
        let mut variants = ImageVariants {
            original: variant("original"),
            cropped: variant("cropped"),
            transparent: variant("transparent"),
        };
        if variants.cropped.is_none() {
            variants.cropped = Some(ImageVariant {
                url: url.clone(),
                width: r.width as u32,
                height: r.height as u32,
                format: r.format.clone(),
                bytes: r.bytes,
                base64: None,
            });
        }
        Image {
            variants,
            style: r.style,
            archetype: r.archetype,
            parent_id: r.parent_id,
            base64: None,
            url,
            id: r.id,
            generation_id: r.generation_id,
            width: r.width as u32,
            height: r.height as u32,
            format: r.format,
            bytes: r.bytes,
            seed: r.seed,
            prompt: r.prompt,
            negative_prompt: r.negative_prompt,
            model: r.model,
            aspect_ratio: r.aspect_ratio,
            metadata: serde_json::from_str(&r.metadata_json).unwrap_or_else(|_| serde_json::json!({})),
            created_at: ts(r.created_at),
        }
    }
}

/// The stored variants of an image by name (`original`, `cropped`, `transparent`).
pub(crate) fn stored_variants(
    r: &ImageRow,
) -> std::collections::BTreeMap<String, crate::service::pipeline::StoredVariant> {
    serde_json::from_str(&r.variants_json).unwrap_or_default()
}

/// The blob key of each variant of `r` by name; `cropped` is the main file when it was not
/// stored separately.
pub(crate) fn variant_keys(r: &ImageRow) -> std::collections::BTreeMap<String, String> {
    let mut keys: std::collections::BTreeMap<String, String> =
        stored_variants(r).into_iter().map(|(name, v)| (name, v.key)).collect();
    keys.entry("cropped".into()).or_insert_with(|| r.blob_key.clone());
    keys
}

/// Image bytes in the requested format.
#[derive(ResponseContent)]
pub enum ImageBytes {
    /// PNG.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// JPEG.
    #[oai(content_type = "image/jpeg")]
    Jpeg(Binary<Vec<u8>>),
    /// WebP.
    #[oai(content_type = "image/webp")]
    Webp(Binary<Vec<u8>>),
}

/// Answer of `GET /v1/images/{id}/file`.
#[derive(ApiResponse)]
pub enum ImageFileResponse {
    /// The file. Immutable: cache it forever.
    #[oai(status = 200)]
    Ok(ImageBytes, #[oai(header = "Cache-Control")] String),
}

/// Keep a rectangle.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropOperation {
    /// Left edge, pixels.
    pub x: i64,
    /// Top edge, pixels.
    pub y: i64,
    /// Width, pixels.
    pub width: i64,
    /// Height, pixels.
    pub height: i64,
}

/// Scale to an exact size (Lanczos3).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeOperation {
    /// Pixels.
    pub width: i64,
    /// Pixels.
    pub height: i64,
}

/// Rotate clockwise.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateOperation {
    /// 90, 180 or 270.
    pub degrees: i64,
}

/// Mirror.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlipOperation {
    /// `horizontal` or `vertical`.
    pub direction: String,
}

/// Apply a filter from `GET /v1/filters`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterOperation {
    /// Filter id, e.g. `sepia`.
    pub name: String,
    /// 0 (unchanged) to 1 (full effect); default 1.
    pub intensity: Option<f64>,
    /// The filter's parameters (see its `params_schema`).
    pub params: Option<serde_json::Value>,
}

/// Make a plain background transparent (the result is PNG or WebP).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveBackgroundOperation {
    /// Colour distance still counted as background, 0–1 (default 0.1).
    pub tolerance: Option<f64>,
    /// Soft edge width, 0–8 pixels (default 1).
    pub feather: Option<i64>,
}

/// One edit operation, selected by `type`.
#[derive(Debug, Clone, Union, Deserialize)]
#[oai(discriminator_name = "type", one_of)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EditOperation {
    /// `{"type":"crop","x","y","width","height"}`
    #[oai(mapping = "crop")]
    Crop(CropOperation),
    /// `{"type":"resize","width","height"}`
    #[oai(mapping = "resize")]
    Resize(ResizeOperation),
    /// `{"type":"rotate","degrees"}`
    #[oai(mapping = "rotate")]
    Rotate(RotateOperation),
    /// `{"type":"flip","direction"}`
    #[oai(mapping = "flip")]
    Flip(FlipOperation),
    /// `{"type":"filter","name","intensity","params"}`
    #[oai(mapping = "filter")]
    Filter(FilterOperation),
    /// `{"type":"remove_background","tolerance","feather"}`
    #[oai(mapping = "remove_background")]
    RemoveBackground(RemoveBackgroundOperation),
}

/// Body of `POST /v1/images/{id}/edits`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// Applied in order, 1–20.
    pub operations: Vec<EditOperation>,
    /// `png`, `jpeg` or `webp`; default the source's format (PNG after a background removal).
    pub output_format: Option<String>,
}

/// Images edited from one image.
#[derive(Debug, Clone, Object)]
pub struct ImageList {
    /// Oldest first.
    pub items: Vec<Image>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// Answer of `POST /v1/images/{id}/edits`.
#[derive(ApiResponse)]
pub enum EditResponse {
    /// The new image (its `parent_id` is the source); `Location` is its record's link
    /// (absolute under `public_url` when set).
    #[oai(status = 201)]
    Created(Json<Image>, #[oai(header = "Location")] String),
}

#[OpenApi(tag = "Tag::Images")]
impl ImagesApi {
    /// Get an image record.
    ///
    /// 404 `not_found` for an unknown id.
    #[oai(path = "/v1/images/:id", method = "get", operation_id = "get_image")]
    async fn get(&self, id: Path<String>, principal: Data<&Principal>) -> Result<Json<Image>, ApiError> {
        let app = app(&self.app);
        Ok(Json(Image::from_row(app.get_image(&principal, &id).await?, app.config.link_base())))
    }

    /// Download an image file.
    ///
    /// Served in its stored format (PNG unless the generation asked otherwise); `format=png|jpeg|webp`
    /// converts on the fly (JPEG is flattened on white); `variant=original|cropped|transparent` picks
    /// the file (404 when the image has no such variant). 422 for another format or variant, 404 for an
    /// unknown id.
    #[oai(path = "/v1/images/:id/file", method = "get", operation_id = "get_image_file")]
    async fn file(
        &self,
        id: Path<String>,
        /// `png`, `jpeg` or `webp`: convert on the fly.
        format: Query<Option<String>>,
        /// `original`, `cropped` (default) or `transparent`.
        variant: Query<Option<String>>,
        principal: Data<&Principal>,
    ) -> Result<ImageFileResponse, ApiError> {
        let (bytes, format) =
            app(&self.app).image_file(&principal, &id, variant.0.as_deref(), format.0.as_deref()).await?;
        let body = match format {
            Format::Png => ImageBytes::Png(Binary(bytes)),
            Format::Jpeg => ImageBytes::Jpeg(Binary(bytes)),
            Format::Webp => ImageBytes::Webp(Binary(bytes)),
        };
        Ok(ImageFileResponse::Ok(body, "private, max-age=31536000, immutable".into()))
    }

    /// Edit an image: apply `operations` in order and store the result as a new image.
    ///
    /// Operations: `crop`, `resize`, `rotate`, `flip`, `filter` (see `GET /v1/filters`) and
    /// `remove_background`. Everything is checked first: a bad operation gives 422
    /// `validation_error` naming `operations[i].field` and nothing is stored. 404 for an unknown
    /// image, 502 `plugin_error` when a filter plugin fails.
    #[oai(path = "/v1/images/:id/edits", method = "post", operation_id = "create_image_edit")]
    async fn edit(
        &self,
        id: Path<String>,
        body: JsonBody<EditRequest>,
        /// Your unique key for this request (1–255 printable ASCII characters). A retry with the
        /// same key, image and body returns the first request's image for 24 hours; the same
        /// key with another request is a 422.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        principal: Data<&Principal>,
    ) -> Result<EditResponse, ApiError> {
        use poem_openapi::types::ToJSON;
        let request = format!("{} {}", id.0, body.0.to_json_string());
        let idempotency = crate::service::Idempotency::new(
            &principal.owner,
            "POST /v1/images/{id}/edits",
            idempotency_key.0,
            &request,
        )?;
        let ops = body
            .0
            .operations
            .into_iter()
            .map(|op| match op {
                EditOperation::Crop(c) => EditOp::Crop { x: c.x, y: c.y, width: c.width, height: c.height },
                EditOperation::Resize(r) => EditOp::Resize { width: r.width, height: r.height },
                EditOperation::Rotate(r) => EditOp::Rotate { degrees: r.degrees },
                EditOperation::Flip(f) => EditOp::Flip { direction: f.direction },
                EditOperation::Filter(f) => EditOp::Filter { name: f.name, intensity: f.intensity, params: f.params },
                EditOperation::RemoveBackground(r) => {
                    EditOp::RemoveBackground { tolerance: r.tolerance, feather: r.feather }
                }
            })
            .collect();
        let app = app(&self.app);
        let row = app.edit_image(&principal, &id, ops, body.0.output_format, idempotency.as_ref()).await?;
        let location = super::link(app, &format!("/v1/images/{}", row.id));
        Ok(EditResponse::Created(Json(Image::from_row(row, app.config.link_base())), location))
    }

    /// List the images edited from this one, oldest first. 404 for an unknown image.
    #[oai(path = "/v1/images/:id/edits", method = "get", operation_id = "list_image_edits")]
    async fn edits(&self, id: Path<String>, principal: Data<&Principal>) -> Result<Json<ImageList>, ApiError> {
        let app = app(&self.app);
        let rows = app.image_edits(&principal, &id).await?;
        let base = app.config.link_base();
        Ok(Json(ImageList { items: rows.into_iter().map(|r| Image::from_row(r, base)).collect(), next_cursor: None }))
    }
}
