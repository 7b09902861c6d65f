//! One generation as a Replicate prediction: create it (holding the answer up to
//! `wait_seconds` with `Prefer: wait`), and when it is not finished by then register
//! `POST urls.cancel` and poll `GET urls.get`.
//!
//! One attempt per call: the host retries and falls back. Up to [`MAX_POLL_FAILURES`] failed
//! polls in a row are tolerated, so a blip does not throw away a running (paid) prediction.

use easel_plugin_sdk::http::{Request, fetch_error};
use easel_plugin_sdk::provider::{GenerateRequest, GenerateResponse, GeneratedImage, PluginError};
use serde_json::json;

use crate::catalogue;
use crate::env::Env;
use crate::settings::Settings;
use crate::util::parse_model_id;
use crate::wire::{self, Prediction, State};
use easel_plugin_sdk::http::same_origin;

/// Failed polls in a row before the call gives up.
pub const MAX_POLL_FAILURES: u32 = 3;

/// The `Authorization` header value; the host substitutes the token.
pub const AUTH: &str = "Bearer {{secret:REPLICATE_API_TOKEN}}";

fn request(method: &str, url: &str, body: Option<Vec<u8>>, timeout_ms: u32) -> Request {
    let mut headers = vec![("authorization".to_string(), AUTH.to_string())];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Request { method: method.into(), url: url.into(), headers, body, timeout_ms: Some(timeout_ms) }
}

/// Generate `req` on Replicate.
pub fn generate(
    env: &mut impl Env,
    settings: &Settings,
    req: &GenerateRequest,
) -> Result<GenerateResponse, PluginError> {
    let id = parse_model_id(&req.model).ok_or_else(|| {
        PluginError::InvalidInput(format!("{:?} is not a Replicate model id (owner/name[:version])", req.model))
    })?;
    if !settings.models.iter().any(|m| m == &req.model) {
        return Err(PluginError::InvalidInput(format!("{} is not among this server's Replicate models", req.model)));
    }
    let spec = catalogue::spec(&id);
    let built = wire::build(spec, &req.model, req)?;
    let base = &settings.base_url;
    let (url, body) = match &id.version {
        Some(version) => (format!("{base}/v1/predictions"), json!({"version": version, "input": built.input})),
        None => (format!("{base}/v1/models/{}/predictions", id.model), json!({"input": built.input})),
    };

    env.progress(0.02, "submitting");
    // The create call may be held for `wait_seconds`: give it that much more time.
    let create_timeout = settings.request_timeout_ms.max(settings.wait_seconds * 1000 + 15_000);
    let mut create = request("POST", &url, Some(body.to_string().into_bytes()), create_timeout);
    create.headers.push(("prefer".into(), format!("wait={}", settings.wait_seconds)));
    let answer = env.fetch(&create).map_err(fetch_error)?;
    if !answer.is_success() {
        return Err(wire::error_from_response(&answer));
    }
    let mut prediction = wire::parse_prediction(&answer.body)?;

    if matches!(prediction.state, State::Running { .. }) {
        let get_url = prediction.get_url.clone().unwrap_or_else(|| format!("{base}/v1/predictions/{}", prediction.id));
        let cancel_url =
            prediction.cancel_url.clone().unwrap_or_else(|| format!("{base}/v1/predictions/{}/cancel", prediction.id));
        same_origin(&get_url, base, "urls.get")?;
        same_origin(&cancel_url, base, "urls.cancel")?;
        env.set_cancel(Some(&request("POST", &cancel_url, None, settings.request_timeout_ms)));
        let polled = poll(env, settings, &get_url, prediction);
        // When polling gave up, the prediction may still run: the host sends the registered
        // cancel before any retry creates another one.
        if polled.is_ok() {
            env.set_cancel(None);
        }
        prediction = polled?;
    }

    match &prediction.state {
        State::Succeeded => {}
        State::Failed(error) => return Err(wire::error_from_failure(error)),
        State::Canceled => return Err(PluginError::Http("canceled upstream".into())),
        State::Running { .. } => unreachable!("poll returns finished predictions"),
    }
    let images = wire::outputs(&prediction, req, built.seed)?;
    env.progress(1.0, "done");
    Ok(GenerateResponse {
        images: images.into_iter().map(|(data, seed)| GeneratedImage { data, seed }).collect(),
        metadata_json: wire::metadata(&prediction).to_string(),
    })
}

/// Poll until the prediction is finished, reporting its state and logs as progress.
fn poll(
    env: &mut impl Env,
    settings: &Settings,
    get_url: &str,
    mut prediction: Prediction,
) -> Result<Prediction, PluginError> {
    let mut failures = 0u32;
    let mut polls = 0i32;
    loop {
        match &prediction.state {
            State::Running { processing: false } => env.progress(0.05, "starting"),
            State::Running { processing: true } => {
                polls += 1;
                let creeping = 0.1 + 0.75 * (1.0 - 0.85f32.powi(polls));
                match wire::log_progress(&prediction.raw) {
                    Some((line, Some(percent))) => env.progress(0.1 + 0.8 * percent / 100.0, &line),
                    Some((line, None)) => env.progress(creeping, &line),
                    None => env.progress(creeping, "generating"),
                }
            }
            _ => return Ok(prediction),
        }
        env.sleep_ms(settings.poll_interval_ms);
        let polled = env.fetch(&request("GET", get_url, None, settings.request_timeout_ms));
        let next = match polled {
            Ok(r) if r.is_success() => wire::parse_prediction(&r.body),
            Ok(r) => Err(wire::error_from_response(&r)),
            Err(e) => Err(fetch_error(e)),
        };
        match next {
            Ok(p) => {
                failures = 0;
                prediction = p;
            }
            Err(e) => {
                let transient = matches!(e, PluginError::Http(_) | PluginError::Timeout(_) | PluginError::Retryable(_));
                failures += 1;
                if !transient || failures >= MAX_POLL_FAILURES {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::request as gen_request;
    use easel_plugin_sdk::http::{HttpError, Response};
    use easel_plugin_sdk::provider::ImageData;
    use serde_json::Value;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct Script {
        answers: VecDeque<Result<Response, HttpError>>,
        sent: Vec<Request>,
        cancels: Vec<Option<Request>>,
        stages: Vec<String>,
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
        fn progress(&mut self, _fraction: f32, stage: &str) {
            self.stages.push(stage.to_string());
        }
        fn sleep_ms(&mut self, _ms: u32) {}
    }

    const BASE: &str = "http://127.0.0.1:5000";

    fn metadata_of(response: &GenerateResponse) -> Value {
        serde_json::from_str(&response.metadata_json).unwrap()
    }

    fn settings() -> Settings {
        let mut s = Settings::from_lookup(|_| None);
        s.base_url = BASE.into();
        s.models.push("someone/custom:abc123".into());
        s.wait_seconds = 5;
        s
    }

    fn prediction(status: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"p1","model":"black-forest-labs/flux-dev","status":"{status}","urls":{{"get":"{BASE}/v1/predictions/p1","cancel":"{BASE}/v1/predictions/p1/cancel"}}{extra}}}"#
        )
    }

    #[test]
    fn finished_at_once_with_prefer_wait() {
        let mut env = Script::default().answer(
            201,
            &prediction(
                "succeeded",
                &format!(r#","output":["{BASE}/files/p1-0.png"],"metrics":{{"predict_time":1.5}}"#),
            ),
        );
        let out = generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).unwrap();
        assert!(matches!(&out.images[0].data, ImageData::Url(u) if u.ends_with("/files/p1-0.png")));
        assert_eq!(out.images[0].seed, 7);
        assert_eq!(metadata_of(&out)["metrics"]["predict_time"], 1.5);
        let create = &env.sent[0];
        assert_eq!(create.url, format!("{BASE}/v1/models/black-forest-labs/flux-dev/predictions"));
        assert!(create.headers.contains(&("prefer".into(), "wait=5".into())));
        assert!(create.headers.contains(&("authorization".into(), "Bearer {{secret:REPLICATE_API_TOKEN}}".into())));
        let body: Value = serde_json::from_slice(create.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["input"]["prompt"], "a red fox");
        assert!(env.cancels.is_empty());
    }

    #[test]
    fn polls_until_done_with_cancel_registered() {
        let mut env = Script::default()
            .answer(201, &prediction("starting", ""))
            .answer(200, &prediction("processing", r#","logs":"Using seed: 41\n 25%|##   | 7/28""#))
            .answer(
                200,
                &prediction("succeeded", &format!(r#","logs":"Using seed: 41\n","output":["{BASE}/files/p1-0.png"]"#)),
            );
        let out = generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).unwrap();
        assert_eq!(out.images[0].seed, 41);
        assert_eq!(env.sent[1].url, format!("{BASE}/v1/predictions/p1"));
        let cancel = env.cancels[0].as_ref().unwrap();
        assert_eq!(
            (cancel.method.as_str(), cancel.url.as_str()),
            ("POST", &*format!("{BASE}/v1/predictions/p1/cancel"))
        );
        assert!(env.cancels[1].is_none());
        assert_eq!(env.stages, ["submitting", "starting", "25%|## | 7/28", "done"]);
    }

    #[test]
    fn version_pinned_ids_use_the_predictions_endpoint() {
        let mut env =
            Script::default().answer(201, &prediction("succeeded", &format!(r#","output":"{BASE}/files/x.png""#)));
        generate(&mut env, &settings(), &gen_request("someone/custom:abc123")).unwrap();
        assert_eq!(env.sent[0].url, format!("{BASE}/v1/predictions"));
        let body: Value = serde_json::from_slice(env.sent[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(body["version"], "abc123");
        assert_eq!(body["input"]["aspect_ratio"], "16:9");
    }

    #[test]
    fn failures_and_cancellation() {
        let mut env = Script::default().answer(201, &prediction("processing", "")).answer(
            200,
            &prediction(
                "failed",
                r#","error":"NSFW content detected. Try running it again, or try a different prompt.""#,
            ),
        );
        let err = generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).unwrap_err();
        assert!(matches!(err, PluginError::ContentBlocked(_)));
        assert!(env.cancels.last().unwrap().is_none());
        let mut env = Script::default().answer(201, &prediction("canceled", ""));
        let err = generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).unwrap_err();
        assert!(matches!(err, PluginError::Http(ref m) if m == "canceled upstream"));
        let mut env = Script::default().answer(
            401,
            r#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#,
        );
        assert!(matches!(
            generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")),
            Err(PluginError::Unauthorized(_))
        ));
        let mut env = Script::default().answer(201, "{broken");
        assert!(matches!(
            generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")),
            Err(PluginError::Http(_))
        ));
    }

    #[test]
    fn foreign_poll_urls_are_refused() {
        let evil = prediction("starting", "")
            .replace(&format!("{BASE}/v1/predictions/p1\""), "http://10.0.0.1/v1/predictions/p1\"");
        let mut env = Script::default().answer(201, &evil);
        let err = generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("urls.get")), "{err:?}");
        assert!(env.cancels.is_empty());
    }

    #[test]
    fn poll_blips_are_tolerated() {
        let mut env = Script::default()
            .answer(201, &prediction("processing", ""))
            .answer(502, "")
            .answer(200, &prediction("succeeded", &format!(r#","output":["{BASE}/files/a.png"]"#)));
        assert!(generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")).is_ok());
        let mut env = Script::default()
            .answer(201, &prediction("processing", ""))
            .answer(500, "")
            .answer(500, "")
            .answer(500, "");
        assert!(matches!(
            generate(&mut env, &settings(), &gen_request("black-forest-labs/flux-dev")),
            Err(PluginError::Retryable(_))
        ));
    }

    #[test]
    fn unlisted_models_are_refused_before_any_request() {
        let mut env = Script::default();
        assert!(generate(&mut env, &settings(), &gen_request("someone/else")).is_err());
        assert!(generate(&mut env, &settings(), &gen_request("a/../b")).is_err());
        assert!(env.sent.is_empty());
    }
}
