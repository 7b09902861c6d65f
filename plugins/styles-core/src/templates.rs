//! The template table of `styles-core`.
//!
//! Conventions:
//! - `prompt` contains `{prompt}` exactly once and reads as one comma-separated description:
//!   medium first, then technique, lighting, palette and composition.
//! - `negative_prompt` lists the artefacts that style typically suffers from; it never
//!   contradicts the positive pattern.
//! - Vector-like styles whose output feeds background removal (`minimalist_vector_art`,
//!   `symbolic_representation`, `icon`, `logo`, `sticker`, `spot_illustration`) always ask for
//!   a centred subject with margin on a plain pure white background in flat colours.
//! - `defaults_json` only uses `aspect_ratio`, `quality`, `steps` and `guidance_scale`.

use easel_plugin_sdk::style_pack::StyleTemplate;

/// Categories used by this pack.
pub const CATEGORIES: &[&str] = &["realistic", "artistic", "illustration", "design", "3d"];

/// Style hints used by this pack.
pub const STYLE_HINTS: &[&str] =
    &["photo", "painting", "illustration", "sketch", "line_art", "anime", "vector", "icon", "logo", "pixel", "3d"];

/// Keys allowed in `defaults_json`.
pub const DEFAULT_KEYS: &[&str] = &["aspect_ratio", "quality", "steps", "guidance_scale"];

/// All templates, in display order.
pub static TEMPLATES: &[StyleTemplate] = &[
    // ── realistic ────────────────────────────────────────────────────────────────────────
    StyleTemplate {
        id: "photorealistic",
        name: "Photorealistic",
        description: "A true-to-life photograph with natural light, sharp focus and realistic textures.",
        category: "realistic",
        tags: &["photo", "realistic", "natural", "dslr", "detailed"],
        prompt: "photorealistic photograph of {prompt}, shot on a full-frame DSLR with a 50mm f/1.8 lens, \
                 natural soft daylight, true-to-life colours, sharp focus on the subject, fine realistic \
                 textures, high dynamic range, balanced rule-of-thirds composition",
        negative_prompt: "cartoon, illustration, painting, drawing, anime, 3d render, cgi, plastic skin, \
                          oversaturated, overexposed, underexposed, blurry, out of focus, lowres, jpeg artifacts, \
                          deformed hands, extra fingers, distorted proportions, watermark, text",
        defaults_json: r#"{"aspect_ratio":"3:2","quality":"high"}"#,
        style_hint: Some("photo"),
    },
    StyleTemplate {
        id: "cinematic",
        name: "Cinematic",
        description: "A widescreen film still with dramatic lighting, shallow depth of field and a graded look.",
        category: "realistic",
        tags: &["film", "movie", "widescreen", "dramatic", "anamorphic"],
        prompt: "cinematic film still of {prompt}, anamorphic widescreen composition, dramatic volumetric \
                 lighting with motivated practical lights, shallow depth of field, subtle 35mm film grain, \
                 teal-and-orange colour grade, gentle anamorphic lens flare, moody atmosphere",
        negative_prompt: "flat lighting, amateur snapshot, overexposed, cartoon, illustration, anime, \
                          oversaturated, lowres, blurry, jpeg artifacts, letterbox bars, frame border, subtitles, \
                          watermark, text",
        defaults_json: r#"{"aspect_ratio":"21:9"}"#,
        style_hint: Some("photo"),
    },
    StyleTemplate {
        id: "portrait_photo",
        name: "Portrait Photo",
        description: "A flattering editorial portrait with soft light, creamy bokeh and natural skin texture.",
        category: "realistic",
        tags: &["photo", "portrait", "headshot", "bokeh", "editorial"],
        prompt: "professional portrait photograph of {prompt}, 85mm lens at f/1.8, soft diffused key light \
                 with a subtle rim light, creamy bokeh background, natural skin texture with fine detail, \
                 catchlights in the eyes, flattering editorial composition",
        negative_prompt: "plastic skin, airbrushed, waxy, over-retouched, cartoon, illustration, 3d render, \
                          cross-eyed, asymmetric eyes, deformed hands, extra fingers, harsh flash, overexposed, \
                          blurry face, lowres, watermark, text",
        defaults_json: r#"{"aspect_ratio":"2:3"}"#,
        style_hint: Some("photo"),
    },
    StyleTemplate {
        id: "vintage_photo",
        name: "Vintage Photo",
        description: "A 1970s analog snapshot with faded film colours, grain, vignetting and light leaks.",
        category: "realistic",
        tags: &["photo", "retro", "analog", "film", "70s", "nostalgic"],
        prompt: "vintage 1970s analog photograph of {prompt}, shot on a 35mm rangefinder, Kodachrome colours \
                 faded to warm tones, soft halation around highlights, visible film grain, slight vignetting, \
                 subtle light leaks, authentic period details",
        negative_prompt: "digital look, hdr, oversharpened, crisp modern colours, smartphones, modern cars, \
                          modern clothing, cgi, 3d render, illustration, cartoon, watermark, text",
        defaults_json: r#"{"aspect_ratio":"3:2"}"#,
        style_hint: Some("photo"),
    },
    StyleTemplate {
        id: "studio_product",
        name: "Studio Product",
        description: "A clean e-commerce product shot on a seamless backdrop with professional softbox lighting.",
        category: "realistic",
        tags: &["photo", "product", "commercial", "e-commerce", "packshot", "studio"],
        prompt: "professional studio product photograph of {prompt}, centred on a seamless light-grey backdrop, \
                 large softbox key light with gentle fill and a crisp rim light, soft grounded contact shadow, \
                 accurate colours and materials, tack-sharp focus throughout, shot with a 100mm macro lens, \
                 commercial catalogue quality",
        negative_prompt: "cluttered background, props, hands, people, harsh shadows, photographer reflection, \
                          dust, fingerprints, scratches, colour cast, distorted shape, warped label, garbled text, \
                          blurry, lowres, watermark",
        defaults_json: r#"{"aspect_ratio":"4:5","quality":"high"}"#,
        style_hint: Some("photo"),
    },
    // ── artistic ─────────────────────────────────────────────────────────────────────────
    StyleTemplate {
        id: "watercolor",
        name: "Watercolor",
        description: "A delicate watercolour painting with transparent washes, soft bleeds and paper texture.",
        category: "artistic",
        tags: &["painting", "watercolour", "traditional", "soft", "paper"],
        prompt: "delicate watercolor painting of {prompt}, transparent layered washes, soft wet-on-wet bleeds \
                 and blooms, granulating pigment, loose expressive brushwork, white of the paper left for \
                 highlights, visible cold-press paper texture, gentle harmonious palette",
        negative_prompt: "photo, photorealistic, 3d render, digital art, hard vector edges, heavy black outlines, \
                          opaque gouache, oversaturated, muddy colours, lowres, watermark, text, signature, frame",
        defaults_json: r#"{"aspect_ratio":"4:3"}"#,
        style_hint: Some("painting"),
    },
    StyleTemplate {
        id: "oil_painting",
        name: "Oil Painting",
        description: "A rich old-master oil painting with impasto brushwork, glazes and chiaroscuro light.",
        category: "artistic",
        tags: &["painting", "oil", "traditional", "fine art", "classical", "canvas"],
        prompt: "oil painting of {prompt}, rich impasto brushstrokes on linen canvas, luminous layered glazes, \
                 chiaroscuro lighting, deep harmonious colours, soft painterly edges, museum-quality fine art \
                 in the tradition of the old masters",
        negative_prompt: "photo, photorealistic, 3d render, digital art, flat vector colours, smooth airbrushed \
                          look, cartoon, anime, oversaturated, lowres, blurry, watermark, text, signature, frame",
        defaults_json: r#"{"aspect_ratio":"4:5"}"#,
        style_hint: Some("painting"),
    },
    StyleTemplate {
        id: "impressionist",
        name: "Impressionist",
        description: "An en plein air impressionist painting of broken colour and dappled, shimmering light.",
        category: "artistic",
        tags: &["painting", "impressionism", "plein air", "monet", "light"],
        prompt: "impressionist painting of {prompt}, broken colour laid in short visible brushstrokes, dappled \
                 natural light and shimmering atmosphere, vibrant complementary colours, loose en plein air \
                 handling, thick oil paint on canvas, in the spirit of Monet and Renoir",
        negative_prompt: "photo, photorealistic, crisp fine detail, hard outlines, 3d render, digital art, flat \
                          vector, cartoon, anime, muddy colours, lowres, watermark, text, signature",
        defaults_json: r#"{"aspect_ratio":"4:3"}"#,
        style_hint: Some("painting"),
    },
    StyleTemplate {
        id: "pencil_sketch",
        name: "Pencil Sketch",
        description: "A monochrome graphite sketchbook study with confident lines and cross-hatched shading.",
        category: "artistic",
        tags: &["drawing", "graphite", "pencil", "sketch", "monochrome", "traditional"],
        prompt: "detailed graphite pencil sketch of {prompt}, expressive confident line work, careful \
                 cross-hatching and tonal shading with hard and soft pencils, visible paper grain, monochrome \
                 grey tones, artist's sketchbook study on off-white paper",
        negative_prompt: "colour, colourful, painting, photo, photorealistic, 3d render, digital art, ink wash, \
                          smudged mess, heavy blur, lowres, watermark, text, signature",
        defaults_json: "",
        style_hint: Some("sketch"),
    },
    StyleTemplate {
        id: "ukiyo_e",
        name: "Ukiyo-e",
        description: "An Edo-period Japanese woodblock print with bold outlines, flat pigments and washi texture.",
        category: "artistic",
        tags: &["japanese", "woodblock", "print", "edo", "traditional", "hokusai"],
        prompt: "ukiyo-e woodblock print of {prompt}, Edo-period Japanese style, bold flowing key-block outlines, \
                 flat areas of traditional pigment, Prussian blue and vermilion accents, soft bokashi gradient \
                 sky, stylised waves and clouds, visible washi paper texture",
        negative_prompt: "photo, photorealistic, 3d render, western oil painting, anime, glossy digital look, \
                          heavy realistic shading, neon colours, lowres, blurry, garbled text, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"2:3"}"#,
        style_hint: Some("painting"),
    },
    StyleTemplate {
        id: "art_nouveau",
        name: "Art Nouveau",
        description: "A decorative Art Nouveau poster with sinuous curves, floral borders and a muted gold palette.",
        category: "artistic",
        tags: &["poster", "decorative", "mucha", "ornamental", "vintage", "1900s"],
        prompt: "Art Nouveau poster of {prompt}, elegant sinuous whiplash curves, ornate floral and botanical \
                 border, decorative circular halo motif, fine lithographic linework, flat muted palette of gold, \
                 sage and dusty rose, in the manner of Alphonse Mucha",
        negative_prompt: "photo, photorealistic, 3d render, modern minimalism, harsh neon colours, cluttered \
                          messy composition, bad anatomy, deformed face, garbled text, lowres, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"2:3"}"#,
        style_hint: Some("illustration"),
    },
    // ── illustration ─────────────────────────────────────────────────────────────────────
    StyleTemplate {
        id: "anime",
        name: "Anime",
        description: "A modern anime key visual with clean cel shading, crisp linework and a painted background.",
        category: "illustration",
        tags: &["anime", "manga", "cel shading", "japanese", "key visual"],
        prompt: "anime key visual of {prompt}, clean cel shading, crisp confident linework, expressive eyes, \
                 vibrant harmonious palette, detailed painted background, soft bloom lighting, high-quality \
                 modern anime production",
        negative_prompt: "photorealistic, photo, 3d render, western cartoon, sketchy lines, muddy colours, \
                          bad anatomy, extra limbs, extra fingers, malformed hands, deformed face, lowres, blurry, \
                          jpeg artifacts, watermark, text, signature",
        defaults_json: r#"{"aspect_ratio":"16:9"}"#,
        style_hint: Some("anime"),
    },
    StyleTemplate {
        id: "comic",
        name: "Comic Book",
        description: "A dynamic American comic-book panel with bold inks, halftone shading and flat vivid colour.",
        category: "illustration",
        tags: &["comic", "inks", "halftone", "superhero", "pop art"],
        prompt: "comic book panel of {prompt}, bold confident inked outlines, dynamic foreshortened pose, \
                 halftone dot shading, flat vivid colours, dramatic speed lines, strong graphic contrast, \
                 classic American comic art",
        negative_prompt: "photorealistic, photo, 3d render, soft painterly blending, muddy colours, sketchy \
                          unfinished lines, bad anatomy, extra limbs, gibberish speech bubbles, garbled text, \
                          blurry, lowres, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"2:3"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "fantasy",
        name: "Fantasy",
        description: "Epic high-fantasy concept art with luminous magical light and a sense of grand scale.",
        category: "illustration",
        tags: &["fantasy", "magic", "epic", "concept art", "medieval"],
        prompt: "epic fantasy concept art of {prompt}, set in an enchanted high-fantasy world of ancient ruins \
                 and towering peaks, luminous ethereal light, rich jewel-tone palette, intricate detail, \
                 dramatic sense of scale, painterly digital illustration",
        negative_prompt: "modern technology, cars, smartphones, sci-fi, mundane setting, photo, flat lighting, \
                          dull colours, bad anatomy, extra limbs, deformed, lowres, blurry, watermark, text, \
                          signature",
        defaults_json: r#"{"aspect_ratio":"3:2"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "cyberpunk",
        name: "Cyberpunk",
        description: "A neon-drenched, rain-slicked cyberpunk megacity scene in high-detail digital art.",
        category: "illustration",
        tags: &["sci-fi", "neon", "futuristic", "night", "city", "blade runner"],
        prompt: "{prompt} in a cyberpunk megacity at night, neon-drenched streets slick with rain reflecting \
                 magenta and cyan signage, holographic advertisements, dense high-tech low-life atmosphere, \
                 volumetric haze, cinematic lighting, highly detailed digital art",
        negative_prompt: "daylight, pastoral, rustic, medieval, washed-out colours, flat lighting, bad anatomy, \
                          deformed, lowres, blurry, jpeg artifacts, garbled text, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"16:9"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "storybook",
        name: "Storybook",
        description: "A warm, whimsical children's picture-book illustration in gouache and coloured pencil.",
        category: "illustration",
        tags: &["children", "picture book", "whimsical", "gouache", "cute", "cosy"],
        prompt: "children's storybook illustration of {prompt}, warm whimsical gouache and coloured-pencil \
                 textures, soft rounded friendly shapes, gentle cosy lighting, charming expressive characters, \
                 inviting picture-book composition",
        negative_prompt: "photo, photorealistic, 3d render, horror, gore, scary, harsh contrast, sharp angular \
                          shapes, bad anatomy, deformed face, lowres, blurry, text, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"4:3"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "spot_illustration",
        name: "Spot Illustration",
        description: "A small self-contained editorial vignette isolated on white, ready to drop into a layout.",
        category: "illustration",
        tags: &["editorial", "vignette", "isolated", "archetype", "web", "cutout"],
        prompt: "spot illustration of {prompt}, small self-contained editorial vignette, confident hand-drawn \
                 ink lines, flat colours from a limited muted palette, single isolated subject centred with \
                 generous margin on a plain pure white background",
        negative_prompt: "background scenery, full-bleed scene, frame, border, coloured background, gradient \
                          background, drop shadow, cast shadow, cropped, cut off, photorealistic, photo, 3d render, \
                          busy composition, text, watermark, signature",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "line_art",
        name: "Line Art",
        description: "Clean black ink line art with elegant continuous contours and no shading.",
        category: "illustration",
        tags: &["line art", "ink", "outline", "coloring book", "monochrome"],
        prompt: "clean line art of {prompt}, crisp black ink lines of confident even weight, elegant continuous \
                 contours, unshaded, pure black lines on white, coloring-book clarity, centred on a plain white \
                 background",
        negative_prompt: "colour, colour fill, shading, gradients, grey tones, hatching, sketchy messy lines, \
                          smudges, textured paper, photo, 3d render, blurry, watermark, text",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("line_art"),
    },
    StyleTemplate {
        id: "pixel_art",
        name: "Pixel Art",
        description: "A crisp 16-bit retro game sprite with a limited palette and hard-edged pixels.",
        category: "illustration",
        tags: &["pixel", "retro", "8-bit", "16-bit", "game", "sprite"],
        prompt: "pixel art of {prompt}, 16-bit retro video game style, crisp hard-edged pixels on a clear pixel \
                 grid, limited 32-colour palette, clean ordered dithering, readable silhouette, consistent pixel \
                 scale",
        negative_prompt: "anti-aliasing, blurry, smooth gradients, soft edges, mixed pixel sizes, photorealistic, \
                          3d render, painterly, noise, jpeg artifacts, text, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("pixel"),
    },
    // ── design ───────────────────────────────────────────────────────────────────────────
    StyleTemplate {
        id: "minimalist",
        name: "Minimalist",
        description: "A calm minimalist composition with one focal subject, generous negative space and few colours.",
        category: "design",
        tags: &["minimal", "clean", "negative space", "simple", "modern"],
        prompt: "minimalist composition of {prompt}, single clear focal subject, generous negative space, \
                 restrained palette of two or three colours, clean geometric shapes, soft even lighting, calm \
                 balanced layout",
        negative_prompt: "clutter, busy background, excessive detail, many objects, heavy texture, ornate \
                          decoration, noise, oversaturated, harsh shadows, lowres, watermark, text",
        defaults_json: r#"{"aspect_ratio":"4:5"}"#,
        style_hint: Some("illustration"),
    },
    StyleTemplate {
        id: "minimalist_vector_art",
        name: "Minimalist Vector Art",
        description: "A flat minimalist vector illustration of a single centred subject on a pure white background.",
        category: "design",
        tags: &["vector", "flat", "minimal", "archetype", "svg", "clean"],
        prompt: "minimalist flat vector illustration of {prompt}, clean geometric shapes, smooth precise curves, \
                 flat solid colours from a limited harmonious palette, crisp edges, single subject centred with \
                 generous margin on a plain pure white background",
        negative_prompt: "gradients, textures, noise, realistic shading, drop shadow, cast shadow, 3d, \
                          photorealistic, photo, sketchy lines, painterly, coloured background, busy background, \
                          scenery, cropped, cut off, text, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("vector"),
    },
    StyleTemplate {
        id: "symbolic_representation",
        name: "Symbolic Representation",
        description: "An idea distilled into one bold flat symbol, centred on a pure white background.",
        category: "design",
        tags: &["symbol", "metaphor", "concept", "vector", "archetype", "pictogram"],
        prompt: "symbolic flat vector representation of {prompt}, the idea distilled into one clear iconic \
                 metaphor, simple bold shapes, strong recognisable silhouette, flat colours from a limited \
                 palette, centred with generous margin on a plain pure white background",
        negative_prompt: "literal detailed scene, multiple subjects, clutter, gradients, textures, drop shadow, \
                          cast shadow, 3d, photorealistic, photo, coloured background, scenery, cropped, cut off, \
                          text, letters, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("vector"),
    },
    StyleTemplate {
        id: "icon",
        name: "Icon",
        description: "A simple bold flat icon with a readable silhouette, centred with padding on pure white.",
        category: "design",
        tags: &["icon", "ui", "glyph", "app", "archetype", "vector"],
        prompt: "flat vector icon of {prompt}, simple bold glyph with a clear readable silhouette, flat colours, \
                 consistent stroke weight, geometric construction on a pixel grid, legible at small sizes, \
                 centred with generous padding on a plain pure white background",
        negative_prompt: "tiny details, clutter, text, letters, gradients, textures, photorealistic, photo, \
                          3d render, drop shadow, coloured background, rounded square tile, frame, border, \
                          cropped, cut off, blurry, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("icon"),
    },
    StyleTemplate {
        id: "logo",
        name: "Logo",
        description: "A simple, memorable flat vector logomark, centred with margin on a pure white background.",
        category: "design",
        tags: &["logo", "brand", "logomark", "identity", "archetype", "vector"],
        prompt: "professional logo design for {prompt}, simple memorable vector logomark, bold clean geometric \
                 shapes, flat colours from a palette of one to three colours, balanced negative space, scalable \
                 and legible, centred with generous margin on a plain pure white background",
        negative_prompt: "photo, photorealistic, 3d render, gradients, textures, complex detail, clutter, drop \
                          shadow, mockup, business card, multiple logos, garbled text, misspelled letters, random \
                          letters, coloured background, cropped, cut off, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("logo"),
    },
    StyleTemplate {
        id: "sticker",
        name: "Sticker",
        description: "A cute die-cut cartoon sticker with bold outlines and flat colours on a pure white background.",
        category: "design",
        tags: &["sticker", "die-cut", "cute", "cartoon", "vector", "merch"],
        prompt: "die-cut sticker of {prompt}, cute bold cartoon style, thick clean dark outlines, flat vibrant \
                 colours with simple cel shading, white die-cut border edged by a thin grey cut line, single \
                 subject centred with generous margin on a plain pure white background",
        negative_prompt: "photo, photorealistic, 3d render, busy background, coloured background, scenery, \
                          gradients, textures, drop shadow, multiple stickers, sticker sheet, cropped, cut off, \
                          blurry, text, watermark",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("vector"),
    },
    StyleTemplate {
        id: "blueprint",
        name: "Blueprint",
        description: "A precise engineering blueprint in white lines on Prussian-blue drafting paper.",
        category: "design",
        tags: &["technical", "engineering", "schematic", "drafting", "architecture"],
        prompt: "technical blueprint of {prompt}, precise white line drawing on deep Prussian-blue drafting \
                 paper, orthographic elevation and cross-section views, dimension lines and callouts, faint \
                 construction grid, meticulous engineering draughtsmanship",
        negative_prompt: "full colour, realistic shading, photo, photorealistic, 3d render, painterly, messy \
                          sketch, wobbly lines, smudges, blurry, garbled text, watermark",
        defaults_json: r#"{"aspect_ratio":"3:2"}"#,
        style_hint: Some("illustration"),
    },
    // ── 3d ───────────────────────────────────────────────────────────────────────────────
    StyleTemplate {
        id: "render_3d",
        name: "3D Render",
        description: "A polished modern CGI render with physically based materials and soft global illumination.",
        category: "3d",
        tags: &["3d", "cgi", "render", "pbr", "octane", "blender"],
        prompt: "3D render of {prompt}, physically based materials, global illumination, soft area lights with \
                 gentle ambient occlusion, subtle depth of field, clean modern CGI, octane render quality, \
                 highly detailed",
        negative_prompt: "2d, flat illustration, drawing, sketch, painting, noisy render, fireflies, jagged \
                          edges, texture stretching, clipping geometry, lowres, blurry, watermark, text",
        defaults_json: "",
        style_hint: Some("3d"),
    },
    StyleTemplate {
        id: "isometric",
        name: "Isometric",
        description: "A tidy isometric miniature diorama on a floating base with soft lighting and pastel colours.",
        category: "3d",
        tags: &["isometric", "diorama", "miniature", "game art", "3d"],
        prompt: "isometric view of {prompt}, true 30-degree isometric projection, tidy miniature diorama on a \
                 floating square base, soft global illumination, gentle pastel palette, crisp clean edges, \
                 detailed stylised game art, centred on a plain light background",
        negative_prompt: "perspective distortion, vanishing points, fisheye, cropped, cut off, cluttered \
                          background, photo, blurry, noisy, lowres, watermark, text",
        defaults_json: r#"{"aspect_ratio":"1:1"}"#,
        style_hint: Some("3d"),
    },
    StyleTemplate {
        id: "low_poly",
        name: "Low Poly",
        description: "A faceted low-poly 3D model with flat-shaded triangles and a soft pastel backdrop.",
        category: "3d",
        tags: &["low poly", "3d", "geometric", "faceted", "game art"],
        prompt: "low poly 3D model of {prompt}, faceted geometric surfaces of a few hundred flat-shaded \
                 triangles, crisp polygon edges, soft directional lighting, harmonious pastel gradient backdrop, \
                 minimal stylised game-art aesthetic",
        negative_prompt: "high poly, smooth subdivided surfaces, realistic textures, photo, photorealistic, \
                          fine organic detail, hair strands, noisy, blurry, lowres, watermark, text",
        defaults_json: "",
        style_hint: Some("3d"),
    },
    StyleTemplate {
        id: "claymation",
        name: "Claymation",
        description: "A handmade stop-motion plasticine scene with fingerprints, soft forms and warm studio light.",
        category: "3d",
        tags: &["clay", "stop motion", "plasticine", "handmade", "miniature", "cute"],
        prompt: "claymation stop-motion scene of {prompt}, handmade plasticine figures with visible fingerprints \
                 and sculpting tool marks, soft rounded forms, miniature handcrafted set, warm soft studio \
                 lighting, shallow depth of field, playful handcrafted charm",
        negative_prompt: "photorealistic skin, real people, smooth glossy cgi plastic, 2d, flat illustration, \
                          drawing, anime, razor-sharp edges, deformed, lowres, blurry, watermark, text",
        defaults_json: r#"{"aspect_ratio":"16:9"}"#,
        style_hint: Some("3d"),
    },
];
