//! Requests and answers: links (relative, or absolute under `public_url`), base64 of every
//! variant, honest parameters (`strict_parameters`), and the server's `[defaults]`.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{TestServer, shared, small};

/// Every link an image hands out, with where it is found.
fn image_links(image: &Value) -> Vec<(String, String)> {
    let mut links = vec![("url".to_string(), image["url"].as_str().unwrap().to_string())];
    for name in ["original", "cropped", "transparent"] {
        if let Some(url) = image["variants"][name]["url"].as_str() {
            links.push((format!("variants.{name}.url"), url.to_string()));
        }
    }
    links
}

#[test]
fn links_are_relative_without_a_public_url() {
    let s = shared();
    let r = s.post_json("/v1/generations", &json!({ "prompt": "a fox", "archetype": "icon", "seed": 3 }));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/v1/generations/{id}").as_str()));
    let g = s.poll(&id);
    let image = &g["images"][0];
    let links = image_links(image);
    assert_eq!(links.len(), 4, "url and three variants: {image}");
    for (field, link) in links {
        assert!(link.starts_with("/v1/images/"), "{field} is relative: {link}");
        assert_eq!(s.get(&link).status, 200, "{field}");
    }
}

#[test]
fn links_are_absolute_under_the_public_url() {
    const PUBLIC: &str = "https://images.example.com/easel";
    let s = TestServer::start(|c| c.public_url = Some(PUBLIC.into()));
    // The public URL's path prefix is what a reverse proxy strips; here the test does.
    let get = |link: &str| s.get(link.strip_prefix(PUBLIC).unwrap_or_else(|| panic!("{link} is under {PUBLIC}")));

    let r = s.post_json("/v1/generations", &json!({ "prompt": "a fox", "archetype": "icon", "seed": 3 }));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("{PUBLIC}/v1/generations/{id}"));
    let g = s.poll(&id);
    assert_eq!(get(&location).json()["id"], g["id"]);
    let image = &g["images"][0];
    let links = image_links(image);
    assert_eq!(links.len(), 4, "{image}");
    for (field, link) in &links {
        assert!(link.starts_with(&format!("{PUBLIC}/v1/images/")), "{field}: {link}");
        assert_eq!(get(link).status, 200, "{field}");
    }
    // The same links on the image record, in lists, and for an edit (201 Location).
    let image_id = image["id"].as_str().unwrap();
    let record = s.get(&format!("/v1/images/{image_id}")).json();
    assert_eq!(image_links(&record), links);
    let listed = s.get("/v1/generations?limit=1").json();
    assert_eq!(image_links(&listed["items"][0]["images"][0]), links);
    let edit = s.post_json(
        &format!("/v1/images/{image_id}/edits"),
        &json!({ "operations": [{ "type": "flip", "direction": "horizontal" }] }),
    );
    assert_eq!(edit.status, 201, "{}", String::from_utf8_lossy(&edit.bytes));
    let edited = edit.json();
    assert_eq!(
        edit.header("location"),
        Some(format!("{PUBLIC}/v1/images/{}", edited["id"].as_str().unwrap()).as_str())
    );
    assert!(edited["url"].as_str().unwrap().starts_with(PUBLIC), "{edited}");
    let history = s.get(&format!("/v1/images/{image_id}/edits")).json();
    assert!(history["items"][0]["url"].as_str().unwrap().starts_with(PUBLIC), "{history}");

    // A loopback caller keeps its tier when it names the server by the public URL's host,
    // and falls to anonymous under any other name (DNS rebinding).
    let as_host =
        |host: &str| s.send_with("POST", "/v1/generations", None, &[("Host", host)], Some(&small("x"))).status;
    assert_eq!(as_host("images.example.com"), 202);
    assert_eq!(as_host("IMAGES.example.com:443"), 202);
    assert_eq!(as_host("rebound.example.net"), 401);
}

#[test]
fn return_base64_carries_every_variant() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a lighthouse", "archetype": "icon", "width": 160, "height": 96, "seed": 5,
                               "return_base64": true }));
    assert_eq!(g["status"], "succeeded", "{g}");
    let image = &g["images"][0];
    let decode = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    for name in ["original", "cropped", "transparent"] {
        let variant = &image["variants"][name];
        assert!(variant.is_object(), "{name} exists: {image}");
        let file = s.get(variant["url"].as_str().unwrap());
        assert_eq!(file.status, 200);
        let inline = decode(&variant["base64"]);
        assert_eq!(inline, file.bytes, "variants.{name}.base64 is that file");
        assert_eq!(inline.len() as u64, variant["bytes"].as_u64().unwrap(), "{name}");
    }
    assert_eq!(image["base64"], image["variants"]["cropped"]["base64"], "base64 stays the main file");
    assert_eq!(decode(&image["base64"]), s.download(image).0.bytes);
    // The same on GET; nothing inline unless asked.
    let again = s.get(&format!("/v1/generations/{}", g["id"].as_str().unwrap())).json();
    assert_eq!(again["images"][0]["variants"]["transparent"]["base64"], image["variants"]["transparent"]["base64"]);
    let plain = s.generate(json!({ "prompt": "a lighthouse", "archetype": "icon", "width": 128, "height": 128 }));
    for name in ["original", "cropped", "transparent"] {
        let variant = &plain["images"][0]["variants"][name];
        assert!(variant.is_null() || variant["base64"].is_null(), "{name}: {variant}");
    }
    assert!(plain["images"][0]["base64"].is_null());
}

#[test]
fn unsupported_parameters_are_refused_naming_the_field_and_the_model() {
    let s = shared();
    // local/procedural takes prompt, negative_prompt, seed and style only.
    let r = s.post_json(
        "/v1/generations",
        &json!({ "prompt": "x", "steps": 20, "guidance_scale": 5.0, "quality": "high", "seed": 1 }),
    );
    let problem = r.problem(422, "validation_error");
    let errors = problem["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors.iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["steps", "guidance_scale", "quality"], "{problem}");
    for e in errors {
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("local/procedural") && message.contains(e["field"].as_str().unwrap()), "{e}");
    }
    let r = s.post_json(
        "/v1/generations",
        &json!({ "prompt": "x", "loras": [{ "path": "https://example.com/a.safetensors" }] }),
    );
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "loras");
    // What the model takes, and what the host does for every model, is accepted.
    let g = s.generate(json!({ "prompt": "a hill", "negative_prompt": "snow", "seed": 9, "style": "anime",
                               "archetype": "spot_illustration", "width": 96, "height": 96 }));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["warnings"], json!([]));
    // A style's own defaults (photorealistic asks for quality "high") are only defaults:
    // a model that does not take them goes without, and says nothing.
    let g = s.generate(json!({ "prompt": "a hill", "style": "photorealistic", "width": 96, "height": 96 }));
    assert_eq!((g["status"].as_str(), g["quality"].as_str()), (Some("succeeded"), None), "{g}");
    assert_eq!(g["warnings"], json!([]));
}

#[test]
fn lenient_servers_drop_unsupported_parameters_with_warnings() {
    let s = TestServer::start(|c| c.strict_parameters = false);
    let body = json!({ "prompt": "a hill", "width": 96, "height": 96, "steps": 30, "quality": "draft",
                       "negative_prompt": "fog" });
    let g = s.generate(body.clone());
    assert_eq!(g["status"], "succeeded", "{g}");
    let warnings = g["warnings"].as_array().unwrap();
    let fields: Vec<&str> = warnings.iter().map(|w| w["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["steps", "quality"], "{g}");
    for w in warnings {
        let message = w["message"].as_str().unwrap();
        assert!(message.starts_with("dropped") && message.contains("local/procedural"), "{w}");
    }
    assert!(g["steps"].is_null() && g["quality"].is_null(), "dropped values are not echoed as used: {g}");
    assert_eq!(g["negative_prompt"], "fog", "negative_prompt is never dropped");
    // Stored with the generation: GET and the list show them.
    let id = g["id"].as_str().unwrap();
    assert_eq!(s.get(&format!("/v1/generations/{id}")).json()["warnings"], g["warnings"]);
    assert_eq!(s.get("/v1/generations?limit=1").json()["items"][0]["warnings"], g["warnings"]);
    // Out-of-range values are still errors, supported or not.
    s.post_json("/v1/generations", &json!({ "prompt": "x", "steps": 0 })).problem(422, "validation_error");
    let clean = s.generate(json!({ "prompt": "x", "width": 64, "height": 64, "seed": 2 }));
    assert_eq!(clean["warnings"], json!([]));
}

#[test]
fn defaults_fill_what_the_request_and_the_settings_leave_out() {
    let s = TestServer::start(|c| {
        c.auth.ip_allowlist = Vec::new();
        c.defaults.aspect_ratio = Some("16:9".into());
        c.defaults.output_format = Some("jpeg".into());
        c.defaults.style = Some("anime".into());
        c.defaults.archetype = Some("no_such_archetype".into());
    });
    let register = s.send(
        "POST",
        "/v1/auth/register",
        None,
        Some(&json!({ "email": "defaults@example.com", "password": "correct horse 1" })),
    );
    assert_eq!(register.status, 201, "{}", String::from_utf8_lossy(&register.bytes));
    let token = register.json()["token"].as_str().unwrap().to_string();
    let generate = |body: Value| {
        let r = s.send_with("POST", "/v1/generations", Some(&token), &[("Prefer", "wait=60")], Some(&body));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        let g = r.json();
        assert_eq!(g["status"], "succeeded", "{g}");
        g
    };

    // The server's defaults, over the archetype's preferred 4:3; an unknown default
    // archetype is skipped.
    let g = generate(json!({ "prompt": "a quiet harbour", "archetype": "spot_illustration", "seed": 1 }));
    assert_eq!((g["aspect_ratio"].as_str(), g["output_format"].as_str()), (Some("16:9"), Some("jpeg")), "{g}");
    assert_eq!(g["style"], "anime");
    assert_eq!(g["images"][0]["format"], "jpeg");
    let g = generate(json!({ "prompt": "a quiet harbour", "seed": 1 }));
    assert!(g["archetype"].is_null(), "{g}");
    assert_eq!(g["model"], "local/procedural");

    // The user's settings over the server's defaults.
    let patched = s.send(
        "PATCH",
        "/v1/me",
        Some(&token),
        Some(&json!({ "settings": { "default_aspect_ratio": "3:2", "default_style": "watercolor" } })),
    );
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.bytes));
    let g = generate(json!({ "prompt": "a quiet harbour", "archetype": "spot_illustration", "seed": 1 }));
    assert_eq!((g["aspect_ratio"].as_str(), g["style"].as_str()), (Some("3:2"), Some("watercolor")), "{g}");

    // The request over everything.
    let g = generate(json!({ "prompt": "a quiet harbour", "aspect_ratio": "1:1", "style": "pixel_art",
                             "output_format": "webp", "seed": 1 }));
    assert_eq!(
        (g["aspect_ratio"].as_str(), g["style"].as_str(), g["output_format"].as_str()),
        (Some("1:1"), Some("pixel_art"), Some("webp")),
        "{g}"
    );
}

#[test]
fn without_defaults_the_archetype_picks_the_ratio() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a quiet harbour", "archetype": "spot_illustration", "seed": 1 }));
    assert_eq!((g["aspect_ratio"].as_str(), g["output_format"].as_str()), (Some("4:3"), Some("png")), "{g}");
    assert!(g["style"].is_null());
}

#[test]
fn a_model_without_parameters_of_its_own_still_takes_a_negative_prompt() {
    let tmp = tempfile::tempdir().unwrap();
    crate::install_fixture(&tmp.path().join("plugins"), "misbehave", "fixture_misbehave.wasm");
    let mut s = TestServer::start_in(tmp.path(), |_| {});
    s.keep(tmp);
    // misbehave/ok declares only `prompt`: the host merges a negative prompt into it.
    let body = json!({ "prompt": "x", "negative_prompt": "blur", "model": "misbehave/ok", "width": 64, "height": 64 });
    let g = s.generate(body.clone());
    assert_eq!((g["status"].as_str(), g["negative_prompt"].as_str()), (Some("succeeded"), Some("blur")), "{g}");
    let mut seeded = body;
    seeded["seed"] = json!(4);
    let problem = s.post_json("/v1/generations", &seeded).problem(422, "validation_error");
    assert_eq!(problem["errors"][0]["field"], "seed", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("misbehave/ok"), "{problem}");
}
