//! One generation through fal's queue: submit, register the cancel request, poll the status
//! (progress from the queue position and the logs), fetch the result.
//!
//! One attempt per call: the host retries and falls back. Polling is not retrying, except that
//! up to [`MAX_POLL_FAILURES`] failed status polls in a row are tolerated (a blip on a status
//! poll should not throw away a paid job that is still running).

use easel_plugin_sdk::http::{Request, fetch_error};
use easel_plugin_sdk::provider::{GenerateRequest, GenerateResponse, GeneratedImage, PluginError};
use serde_json::Value;

use crate::catalogue;
use crate::env::Env;
use crate::settings::Settings;
use crate::util::{percent_encode, valid_endpoint_id};
use crate::wire::{self, Status};
use easel_plugin_sdk::http::same_origin;
use easel_plugin_sdk::text::one_line as short;

/// Failed status polls in a row before the call gives up.
pub const MAX_POLL_FAILURES: u32 = 3;

/// The `Authorization` header value; the host substitutes the key.
pub const AUTH: &str = "Key {{secret:FAL_KEY}}";

fn request(method: &str, url: &str, body: Option<Vec<u8>>, timeout_ms: u32) -> Request {
    let mut headers =
        vec![("authorization".to_string(), AUTH.to_string()), ("accept".into(), "application/json".into())];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Request { method: method.into(), url: url.into(), headers, body, timeout_ms: Some(timeout_ms) }
}

/// Generate `req` on fal.
pub fn generate(
    env: &mut impl Env,
    settings: &Settings,
    req: &GenerateRequest,
) -> Result<GenerateResponse, PluginError> {
    if !valid_endpoint_id(&req.model) {
        return Err(PluginError::InvalidInput(format!("{:?} is not a fal endpoint id (owner/app[/path])", req.model)));
    }
    if let Some(models) = &settings.models
        && !models.iter().any(|m| m == &req.model)
    {
        return Err(PluginError::InvalidInput(format!("{} is not among this server's fal models", req.model)));
    }
    let spec = catalogue::spec(&req.model);
    let submission = wire::build(spec, &req.model, req)?;
    let timeout = settings.request_timeout_ms;

    env.progress(0.02, "submitting");
    let body = serde_json::to_vec(&Value::Object(submission.body)).map_err(|e| PluginError::Internal(e.to_string()))?;
    let mut url = format!("{}/{}", settings.base_url, submission.endpoint);
    // With callbacks on, fal POSTs to the host when the job is done, which ends the wait
    // between polls early; polling stays the source of truth.
    if let Some(callback) = env.callback_url() {
        url.push_str("?fal_webhook=");
        url.push_str(&percent_encode(&callback));
    }
    let answer = env.fetch(&request("POST", &url, Some(body), timeout)).map_err(fetch_error)?;
    if !answer.is_success() {
        return Err(wire::error_from_response(&answer));
    }
    let queued = wire::parse_queued(&answer.body)?;
    for (url, what) in
        [(&queued.status_url, "status_url"), (&queued.response_url, "response_url"), (&queued.cancel_url, "cancel_url")]
    {
        same_origin(url, &settings.base_url, what)?;
    }

    env.set_cancel(Some(&request("PUT", &queued.cancel_url, None, timeout)));
    let result = wait_and_fetch(env, settings, req, &submission.endpoint, &queued);
    // On failure the request may still be running (polling gave up): leave the cancel
    // registered so the host stops it before any retry submits another paid job. Canceling a
    // finished request is harmless (fal answers ALREADY_COMPLETED).
    if result.is_ok() {
        env.set_cancel(None);
    }
    result
}

fn wait_and_fetch(
    env: &mut impl Env,
    settings: &Settings,
    req: &GenerateRequest,
    endpoint: &str,
    queued: &wire::Queued,
) -> Result<GenerateResponse, PluginError> {
    let timeout = settings.request_timeout_ms;
    let sep = if queued.status_url.contains('?') { '&' } else { '?' };
    let status_url = format!("{}{sep}logs=1", queued.status_url);
    let mut failures = 0u32;
    let mut running_polls = 0i32;
    let (error, metrics) = loop {
        let polled = env.fetch(&request("GET", &status_url, None, timeout));
        let status = match polled {
            Ok(r) if r.is_success() => wire::parse_status(&r.body),
            Ok(r) => Err(wire::error_from_response(&r)),
            Err(e) => Err(fetch_error(e)),
        };
        match status {
            Ok(Status::InQueue(position)) => {
                failures = 0;
                let stage = match position {
                    Some(p) => format!("queued (position {p})"),
                    None => "queued".to_string(),
                };
                env.progress(0.05, &stage);
            }
            Ok(Status::InProgress(log)) => {
                failures = 0;
                running_polls += 1;
                let fraction = 0.1 + 0.75 * (1.0 - 0.85f32.powi(running_polls));
                let stage = log.map_or_else(|| "generating".to_string(), |l| short(&l, 60));
                env.progress(fraction, &stage);
            }
            Ok(Status::Completed { error, metrics }) => break (error, metrics),
            Err(e) => {
                // Auth and request errors will not heal; transport blips and 5xx may.
                let transient = matches!(e, PluginError::Http(_) | PluginError::Timeout(_) | PluginError::Retryable(_));
                failures += 1;
                if !transient || failures >= MAX_POLL_FAILURES {
                    return Err(e);
                }
            }
        }
        env.sleep_ms(settings.poll_interval_ms);
    };

    env.progress(0.9, "fetching result");
    let answer = env.fetch(&request("GET", &queued.response_url, None, timeout)).map_err(fetch_error)?;
    if !answer.is_success() {
        return Err(wire::error_from_response(&answer));
    }
    if let Some((message, kind)) = error {
        return Err(wire::error_from_status(&message, kind.as_deref()));
    }
    let (images, mut meta) = wire::parse_result(&answer.body, req, endpoint, &queued.request_id)?;
    if let (Some(m), Value::Object(map)) = (metrics.filter(|m| !m.is_null()), &mut meta) {
        map.insert("metrics".into(), m);
    }
    env.progress(1.0, "done");
    Ok(GenerateResponse {
        images: images.into_iter().map(|(data, seed)| GeneratedImage { data, seed }).collect(),
        metadata_json: meta.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use easel_plugin_sdk::http::{HttpError, Response};
    use easel_plugin_sdk::provider::ImageData;
    use std::collections::VecDeque;

    /// A scripted host: answers requests in order and records everything.
    #[derive(Default)]
    struct Script {
        answers: VecDeque<Result<Response, HttpError>>,
        sent: Vec<Request>,
        cancels: Vec<Option<Request>>,
        stages: Vec<(f32, String)>,
        sleeps: u32,
        callback: Option<String>,
    }

    impl Script {
        fn answer(mut self, status: u16, body: &str) -> Self {
            self.answers.push_back(Ok(Response { status, headers: vec![], body: body.as_bytes().to_vec() }));
            self
        }
    }

    impl Env for Script {
        fn fetch(&mut self, request: &Request) -> Result<Response, HttpError> {
            self.sent.push(request.clone());
            self.answers.pop_front().expect("unexpected request")
        }
        fn set_cancel(&mut self, request: Option<&Request>) {
            self.cancels.push(request.cloned());
        }
        fn progress(&mut self, fraction: f32, stage: &str) {
            self.stages.push((fraction, stage.to_string()));
        }
        fn sleep_ms(&mut self, _ms: u32) {
            self.sleeps += 1;
        }
        fn callback_url(&mut self) -> Option<String> {
            self.callback.clone()
        }
    }

    const BASE: &str = "http://127.0.0.1:4000";

    fn settings() -> Settings {
        Settings {
            base_url: BASE.into(),
            models: None,
            poll_interval_ms: 10,
            request_timeout_ms: 5000,
            jwks_url: crate::settings::DEFAULT_JWKS_URL.into(),
            webhook_user_id: None,
        }
    }

    fn queued() -> String {
        format!(
            r#"{{"request_id":"r1","status":"IN_QUEUE","queue_position":1,"status_url":"{BASE}/fal-ai/flux/requests/r1/status","response_url":"{BASE}/fal-ai/flux/requests/r1","cancel_url":"{BASE}/fal-ai/flux/requests/r1/cancel"}}"#
        )
    }

    #[test]
    fn full_queue_flow() {
        let mut env = Script::default()
            .answer(200, &queued())
            .answer(202, r#"{"status":"IN_QUEUE","queue_position":1}"#)
            .answer(202, r#"{"status":"IN_PROGRESS","logs":[{"message":"loading"},{"message":"step 14/28"}]}"#)
            .answer(200, r#"{"status":"COMPLETED","metrics":{"inference_time":1.5}}"#)
            .answer(
                200,
                &format!(r#"{{"images":[{{"url":"{BASE}/files/r1-0.png"}}],"seed":9,"has_nsfw_concepts":[false]}}"#),
            );
        let req = crate::wire::tests::request("fal-ai/flux/dev");
        let out = generate(&mut env, &settings(), &req).unwrap();
        assert_eq!(out.images.len(), 1);
        assert_eq!(out.images[0].seed, 9);
        assert!(matches!(&out.images[0].data, ImageData::Url(u) if u.ends_with("/files/r1-0.png")));
        let meta: Value = serde_json::from_str(&out.metadata_json).unwrap();
        assert_eq!(meta["metrics"]["inference_time"], 1.5);

        let submit = &env.sent[0];
        assert_eq!(submit.method, "POST");
        assert_eq!(submit.url, format!("{BASE}/fal-ai/flux/dev"));
        assert!(submit.headers.contains(&("authorization".into(), "Key {{secret:FAL_KEY}}".into())));
        assert_eq!(env.sent[1].url, format!("{BASE}/fal-ai/flux/requests/r1/status?logs=1"));
        assert_eq!(env.sent[4].url, format!("{BASE}/fal-ai/flux/requests/r1"));
        // Cancel registered right after submission, cleared at the end.
        assert_eq!(env.cancels.len(), 2);
        let cancel = env.cancels[0].as_ref().unwrap();
        assert_eq!(
            (cancel.method.as_str(), cancel.url.as_str()),
            ("PUT", &*format!("{BASE}/fal-ai/flux/requests/r1/cancel"))
        );
        assert!(env.cancels[1].is_none());
        let stages: Vec<&str> = env.stages.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(stages, ["submitting", "queued (position 1)", "step 14/28", "fetching result", "done"]);
        assert_eq!(env.sleeps, 2);
    }

    #[test]
    fn callback_url_goes_in_fal_webhook_and_polling_stays() {
        let mut env =
            Script { callback: Some("https://easel.example/v1/callbacks/fal/gen_01ABC".into()), ..Script::default() }
                .answer(200, &queued())
                .answer(202, r#"{"status":"IN_PROGRESS","logs":[]}"#)
                .answer(200, r#"{"status":"COMPLETED"}"#)
                .answer(200, r#"{"images":[{"url":"http://127.0.0.1:4000/files/x.png"}]}"#);
        generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap();
        assert_eq!(
            env.sent[0].url,
            format!(
                "{BASE}/fal-ai/flux/dev?fal_webhook=https%3A%2F%2Feasel.example%2Fv1%2Fcallbacks%2Ffal%2Fgen_01ABC"
            )
        );
        assert_eq!(env.sent[1].url, format!("{BASE}/fal-ai/flux/requests/r1/status?logs=1"));
        assert_eq!(env.sent.len(), 4);
        assert_eq!(env.sleeps, 1);
    }

    #[test]
    fn urls_on_another_origin_are_refused() {
        let evil =
            queued().replace("http://127.0.0.1:4000/fal-ai/flux/requests/r1/status", "http://169.254.169.254/latest");
        let mut env = Script::default().answer(200, &evil);
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("status_url")), "{err:?}");
        assert!(env.cancels.is_empty());
    }

    #[test]
    fn submit_errors_are_mapped() {
        let mut env = Script::default().answer(401, r#"{"detail":"No user found for Key ID and Secret"}"#);
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::Unauthorized(_)));
        let mut env = Script::default().answer(200, "{not json");
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::Http(ref m) if m.starts_with("malformed response")));
    }

    #[test]
    fn failed_jobs_and_blocked_results() {
        let mut env = Script::default()
            .answer(200, &queued())
            .answer(200, r#"{"status":"COMPLETED","error":"Internal error","error_type":"runner_failed"}"#)
            .answer(422, r#"{"detail":[{"loc":["body","image_size"],"msg":"bad size","type":"value_error"}]}"#);
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(ref m) if m.contains("image_size: bad size")), "{err:?}");
        // Left registered: the host sends it (fal answers ALREADY_COMPLETED for a finished job).
        assert!(env.cancels.last().unwrap().is_some());

        let mut env = Script::default()
            .answer(200, &queued())
            .answer(200, r#"{"status":"COMPLETED"}"#)
            .answer(200, r#"{"images":[{"url":"http://127.0.0.1:4000/files/x.png"}],"has_nsfw_concepts":[true]}"#);
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::ContentBlocked(_)));
    }

    #[test]
    fn transient_poll_failures_are_tolerated_up_to_a_limit() {
        let mut env = Script::default()
            .answer(200, &queued())
            .answer(503, "")
            .answer(200, r#"{"status":"COMPLETED"}"#)
            .answer(200, r#"{"images":[{"url":"http://127.0.0.1:4000/files/x.png"}]}"#);
        assert!(generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).is_ok());
        let mut env = Script::default().answer(200, &queued()).answer(500, "").answer(500, "").answer(500, "");
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::Retryable(_)));
        let mut env = Script::default().answer(200, &queued()).answer(403, r#"{"detail":"forbidden"}"#);
        let err = generate(&mut env, &settings(), &crate::wire::tests::request("fal-ai/flux/dev")).unwrap_err();
        assert!(matches!(err, PluginError::Unauthorized(_)));
    }

    #[test]
    fn unknown_or_unlisted_models_are_refused() {
        let mut env = Script::default();
        let mut s = settings();
        s.models = Some(vec!["fal-ai/flux/dev".into()]);
        assert!(generate(&mut env, &s, &crate::wire::tests::request("fal-ai/flux/schnell")).is_err());
        assert!(generate(&mut env, &s, &crate::wire::tests::request("../x")).is_err());
        assert!(env.sent.is_empty());
    }
}
