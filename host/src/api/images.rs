//! `/v1/images`: image records and their files.

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, ResponseContent};

use super::generations::ts;
use super::problem::ApiError;
use super::{Tag, app};
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
    /// Download link (relative to the server).
    pub url: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    /// File size in bytes.
    pub bytes: i64,
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

/// A stored image.
#[derive(Debug, Clone, Object)]
pub struct Image {
    /// `img_…`.
    pub id: String,
    /// The generation that made it.
    pub generation_id: Option<String>,
    /// Download link: `/v1/images/{id}/file`.
    pub url: String,
    /// Variant links.
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
    /// The main file's bytes, base64, when the generation asked for `return_base64`.
    pub base64: Option<String>,
}

impl From<ImageRow> for Image {
    fn from(r: ImageRow) -> Self {
        let url = format!("/v1/images/{}/file", r.id);
        let stored: std::collections::BTreeMap<String, crate::service::pipeline::StoredVariant> =
            serde_json::from_str(&r.variants_json).unwrap_or_default();
        let variant = |name: &str| {
            stored.get(name).map(|v| ImageVariant {
                url: format!("{url}?variant={name}"),
                width: v.width,
                height: v.height,
                format: v.format.clone(),
                bytes: v.bytes,
            })
        };
        let mut variants =
            ImageVariants { original: variant("original"), cropped: variant("cropped"), transparent: variant("transparent") };
        if variants.cropped.is_none() {
            variants.cropped = Some(ImageVariant {
                url: url.clone(),
                width: r.width as u32,
                height: r.height as u32,
                format: r.format.clone(),
                bytes: r.bytes,
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

#[OpenApi(tag = "Tag::Images")]
impl ImagesApi {
    /// Get an image record.
    ///
    /// 404 `not_found` for an unknown id.
    #[oai(path = "/v1/images/:id", method = "get", operation_id = "get_image")]
    async fn get(&self, id: Path<String>) -> Result<Json<Image>, ApiError> {
        Ok(Json(app(&self.app).get_image(&id).await?.into()))
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
    ) -> Result<ImageFileResponse, ApiError> {
        let (bytes, format) = app(&self.app).image_file(&id, variant.0.as_deref(), format.0.as_deref()).await?;
        let body = match format {
            Format::Png => ImageBytes::Png(Binary(bytes)),
            Format::Jpeg => ImageBytes::Jpeg(Binary(bytes)),
            Format::Webp => ImageBytes::Webp(Binary(bytes)),
        };
        Ok(ImageFileResponse::Ok(body, "public, max-age=31536000, immutable".into()))
    }
}
