//! The compiled GOV.UK Frontend assets, embedded in the binary (see crates/web/assets/README.md).

use axum::extract::Path;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "usher.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../assets/usher.css") },
    Asset {
        name: "govuk-frontend.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/govuk-frontend.min.js"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/init.js"),
    },
];

pub async fn serve(Path(file): Path<String>) -> Result<Response, PageError> {
    let asset = ASSETS.iter().find(|a| a.name == file).ok_or_else(|| PageError(usher_domain::Error::not_found()))?;
    let mut response = asset.body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(response)
}
