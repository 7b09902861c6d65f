//! The filter catalogue and parameter parsing.

use serde_json::{Map, Value, json};

/// The most parameters any filter takes.
pub(crate) const MAX_PARAMS: usize = 2;

/// One numeric parameter of a filter.
#[derive(Clone, Copy, Debug)]
pub struct ParamDef {
    /// Key in the params object.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// Value used when the key is absent.
    pub default: f64,
    /// Whether only whole numbers are accepted.
    pub integer: bool,
}

/// One filter of this plugin.
#[derive(Clone, Copy, Debug)]
pub struct FilterDef {
    /// Filter id, e.g. "sepia".
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Its parameters (at most two).
    pub params: &'static [ParamDef],
}

const fn num(name: &'static str, description: &'static str, min: f64, max: f64, default: f64) -> ParamDef {
    ParamDef { name, description, min, max, default, integer: false }
}

const AMOUNT_HELP: &str = "Strength and direction: -1 to 1 (0 = unchanged); intensity scales it.";

/// Every filter, in listing order.
pub const FILTERS: &[FilterDef] = &[
    FilterDef { id: "grayscale", name: "Grayscale", description: "Black and white (Rec. 709 luma).", params: &[] },
    FilterDef { id: "sepia", name: "Sepia", description: "Warm brown monochrome toning.", params: &[] },
    FilterDef {
        id: "vintage",
        name: "Vintage",
        description: "Faded old print: sepia toning, lifted blacks, softened whites and a subtle vignette.",
        params: &[],
    },
    FilterDef { id: "invert", name: "Invert", description: "Photographic negative.", params: &[] },
    FilterDef {
        id: "blur",
        name: "Blur",
        description: "Gaussian blur.",
        params: &[num("radius", "Blur radius (standard deviation) in pixels.", 0.5, 50.0, 3.0)],
    },
    FilterDef {
        id: "sharpen",
        name: "Sharpen",
        description: "Unsharp mask: boosts detail finer than the radius.",
        params: &[
            num("radius", "Radius (standard deviation) of the detail to boost, in pixels.", 0.5, 50.0, 1.5),
            num("amount", "How strongly detail is boosted.", 0.0, 5.0, 1.0),
        ],
    },
    FilterDef {
        id: "vignette",
        name: "Vignette",
        description: "Darkens the corners and edges.",
        params: &[num("strength", "How dark the corners get: 0 to 1 (1 = black).", 0.0, 1.0, 0.5)],
    },
    FilterDef {
        id: "brightness",
        name: "Brightness",
        description: "Lightens (toward white) or darkens (toward black).",
        params: &[num("amount", AMOUNT_HELP, -1.0, 1.0, 0.2)],
    },
    FilterDef {
        id: "contrast",
        name: "Contrast",
        description: "Spreads tones apart from (or pulls them toward) mid-grey.",
        params: &[num("amount", AMOUNT_HELP, -1.0, 1.0, 0.25)],
    },
    FilterDef {
        id: "saturation",
        name: "Saturation",
        description: "Makes colours more vivid or more muted (-1 = grayscale).",
        params: &[num("amount", AMOUNT_HELP, -1.0, 1.0, 0.4)],
    },
    FilterDef {
        id: "posterize",
        name: "Posterize",
        description: "Reduces each channel to a few evenly spaced levels.",
        params: &[ParamDef {
            name: "levels",
            description: "Levels per channel.",
            min: 2.0,
            max: 32.0,
            default: 4.0,
            integer: true,
        }],
    },
    FilterDef {
        id: "hue_rotate",
        name: "Hue rotate",
        description: "Rotates every hue around the colour wheel, keeping luminance.",
        params: &[num("degrees", "Rotation angle in degrees.", -360.0, 360.0, 90.0)],
    },
];

/// The filter named `id`, or an error listing the known ids.
pub(crate) fn find(id: &str) -> Result<&'static FilterDef, String> {
    FILTERS.iter().find(|f| f.id == id).ok_or_else(|| {
        let known: Vec<&str> = FILTERS.iter().map(|f| f.id).collect();
        format!("unknown filter {id:?} (known filters: {})", known.join(", "))
    })
}

impl FilterDef {
    /// JSON schema of the params object (`"{}"` when the filter takes none).
    pub fn params_schema(&self) -> String {
        if self.params.is_empty() {
            return "{}".into();
        }
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|p| {
                let schema = if p.integer {
                    json!({
                        "type": "integer", "minimum": p.min as i64, "maximum": p.max as i64,
                        "default": p.default as i64, "description": p.description,
                    })
                } else {
                    json!({
                        "type": "number", "minimum": p.min, "maximum": p.max,
                        "default": p.default, "description": p.description,
                    })
                };
                (p.name.to_string(), schema)
            })
            .collect();
        json!({ "type": "object", "additionalProperties": false, "properties": properties }).to_string()
    }

    /// The parameter values, in `params` order, from a JSON object (`""`/`"{}"`/`"null"`:
    /// defaults). Unknown keys, non-numbers and out-of-range values are errors naming the key.
    pub(crate) fn parse_params(&self, json: &str) -> Result<[f32; MAX_PARAMS], String> {
        let mut values = [0.0f32; MAX_PARAMS];
        for (slot, p) in values.iter_mut().zip(self.params) {
            *slot = p.default as f32;
        }
        let json = json.trim();
        if json.is_empty() {
            return Ok(values);
        }
        let object = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(object)) => object,
            Ok(Value::Null) => return Ok(values),
            Ok(other) => return Err(format!("{}: params must be a JSON object, got {other}", self.id)),
            Err(e) => return Err(format!("{}: params are not valid JSON: {e}", self.id)),
        };
        for (key, value) in &object {
            let Some(index) = self.params.iter().position(|p| p.name == key) else {
                let expected = if self.params.is_empty() {
                    "this filter takes no parameters".to_string()
                } else {
                    let names: Vec<&str> = self.params.iter().map(|p| p.name).collect();
                    format!("expected {}", names.join(", "))
                };
                return Err(format!("{}: unknown parameter {key:?} ({expected})", self.id));
            };
            let p = &self.params[index];
            match value.as_f64() {
                Some(v) if v >= p.min && v <= p.max && (!p.integer || v.fract() == 0.0) => values[index] = v as f32,
                _ => {
                    let kind = if p.integer { "an integer" } else { "a number" };
                    return Err(format!(
                        "{}: parameter {:?} must be {kind} from {} to {}, got {value}",
                        self.id, p.name, p.min, p.max
                    ));
                }
            }
        }
        Ok(values)
    }
}
