//! Tests through the [`Cropper`] trait, as the host calls it.

use super::*;

fn ratio(width: u32, height: u32) -> AspectRatio {
    AspectRatio { width, height }
}

#[test]
fn trait_lists_the_archetypes() {
    assert_eq!(<Archetypes as Cropper>::archetypes().len(), 6);
}

#[test]
fn trait_plan_is_exact_and_rejects_zero_terms() {
    let img = Rgba::filled(1000, 700, [10, 20, 30, 255]);
    let r = Archetypes::plan(&img, ratio(21, 9), Anchor::Bottom).unwrap();
    assert_eq!((r.width, r.height), (994, 426));
    assert_eq!(r.y + r.height, 700);
    for target in [ratio(0, 1), ratio(1, 0), ratio(0, 0)] {
        assert!(matches!(Archetypes::plan(&img, target, Anchor::Center), Err(PluginError::InvalidInput(_))));
    }
    let tiny = Rgba::filled(2, 2, [0; 4]);
    assert!(matches!(Archetypes::plan(&tiny, ratio(1, 3), Anchor::Smart), Err(PluginError::InvalidInput(_))));
}

#[test]
fn trait_remove_background() {
    let mut img = Rgba::filled(40, 40, [255, 255, 255, 255]);
    for y in 10..30 {
        for x in 10..30 {
            img.put(x, y, [0, 90, 200, 255]);
        }
    }
    Archetypes::remove_background(&mut img, r#"{"tolerance":0.2,"feather":2}"#).unwrap();
    assert_eq!(img.get(0, 0)[3], 0);
    assert_eq!(img.get(20, 20), [0, 90, 200, 255]);
    assert!((1..255).contains(&img.get(10, 20)[3]));

    let mut img = Rgba::filled(4, 4, [255; 4]);
    match Archetypes::remove_background(&mut img, r#"{"radius":2}"#) {
        Err(PluginError::InvalidInput(msg)) => assert!(msg.contains("radius"), "{msg}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(img, Rgba::filled(4, 4, [255; 4]), "untouched on error");
}
