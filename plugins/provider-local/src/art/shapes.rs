//! Crisp anti-aliased shapes described by signed distance functions (negative inside).
//!
//! Every distance here is exact or a lower bound of the true distance, which lets the
//! [`Shapes`] layer skip whole runs of pixels that are certainly inside or outside.

use super::canvas::Layer;
use super::color::{Rgb, fmax, fmin, mix};

/// A 2D point or vector in pixel coordinates.
pub type Vec2 = [f32; 2];

#[inline]
fn dot(a: Vec2, b: Vec2) -> f32 {
    a[0] * b[0] + a[1] * b[1]
}

#[inline]
fn sub(a: Vec2, b: Vec2) -> Vec2 {
    [a[0] - b[0], a[1] - b[1]]
}

/// One polygon edge with its precomputed inverse squared length.
#[derive(Clone, Debug)]
pub struct Edge {
    v: Vec2,
    e: Vec2,
    inv_len2: f32,
}

/// A signed distance function.
#[derive(Clone, Debug)]
pub enum Sdf {
    /// Disc of radius `r` around `c`.
    Circle {
        /// Centre.
        c: Vec2,
        /// Radius.
        r: f32,
    },
    /// Axis-aligned ellipse (distance is a lower bound).
    Ellipse {
        /// Centre.
        c: Vec2,
        /// Half-width and half-height.
        r: Vec2,
    },
    /// Axis-aligned rectangle of half-size `half` with corners rounded by `round`.
    RoundBox {
        /// Centre.
        c: Vec2,
        /// Half-width and half-height (outer).
        half: Vec2,
        /// Corner radius.
        round: f32,
    },
    /// Line segment from `a` to `b` thickened by `r`.
    Capsule {
        /// Start.
        a: Vec2,
        /// End.
        b: Vec2,
        /// Half-thickness.
        r: f32,
    },
    /// Any simple polygon (convex or not).
    Polygon(Vec<Edge>),
    /// Everything inside either.
    Union(Box<Sdf>, Box<Sdf>),
    /// The first minus the second.
    Subtract(Box<Sdf>, Box<Sdf>),
    /// Inside both.
    Intersect(Box<Sdf>, Box<Sdf>),
}

impl Sdf {
    /// A polygon through `points` (either winding).
    pub fn polygon(points: &[Vec2]) -> Sdf {
        let n = points.len();
        let edges = (0..n)
            .map(|i| {
                let v = points[i];
                let e = sub(points[(i + n - 1) % n], v);
                Edge { v, e, inv_len2: 1.0 / dot(e, e).max(1e-12) }
            })
            .collect();
        Sdf::Polygon(edges)
    }

    /// `self` ∪ `other`.
    pub fn union(self, other: Sdf) -> Sdf {
        Sdf::Union(Box::new(self), Box::new(other))
    }

    /// `self` minus `other`.
    pub fn minus(self, other: Sdf) -> Sdf {
        Sdf::Subtract(Box::new(self), Box::new(other))
    }

    /// `self` ∩ `other`.
    pub fn and(self, other: Sdf) -> Sdf {
        Sdf::Intersect(Box::new(self), Box::new(other))
    }

    /// Signed distance from `p` (negative inside).
    pub fn dist(&self, p: Vec2) -> f32 {
        match self {
            Sdf::Circle { c, r } => {
                let d = sub(p, *c);
                dot(d, d).sqrt() - r
            }
            Sdf::Ellipse { c, r } => {
                let q = [(p[0] - c[0]) / r[0], (p[1] - c[1]) / r[1]];
                (dot(q, q).sqrt() - 1.0) * fmin(r[0], r[1])
            }
            Sdf::RoundBox { c, half, round } => {
                let q = [(p[0] - c[0]).abs() - half[0] + round, (p[1] - c[1]).abs() - half[1] + round];
                let outside = [fmax(q[0], 0.0), fmax(q[1], 0.0)];
                dot(outside, outside).sqrt() + fmin(fmax(q[0], q[1]), 0.0) - round
            }
            Sdf::Capsule { a, b, r } => {
                let pa = sub(p, *a);
                let ba = sub(*b, *a);
                let h = (dot(pa, ba) / fmax(dot(ba, ba), 1e-12)).clamp(0.0, 1.0);
                let d = [pa[0] - ba[0] * h, pa[1] - ba[1] * h];
                dot(d, d).sqrt() - r
            }
            Sdf::Polygon(edges) => {
                let mut d2 = f32::MAX;
                let mut inside = false;
                for edge in edges {
                    let w = sub(p, edge.v);
                    let t = (dot(w, edge.e) * edge.inv_len2).clamp(0.0, 1.0);
                    let b = [w[0] - edge.e[0] * t, w[1] - edge.e[1] * t];
                    d2 = fmin(d2, dot(b, b));
                    let prev_y = edge.v[1] + edge.e[1];
                    let up = p[1] >= edge.v[1];
                    let down = p[1] < prev_y;
                    let cross = edge.e[0] * w[1] > edge.e[1] * w[0];
                    if (up && down && cross) || (!up && !down && !cross) {
                        inside = !inside;
                    }
                }
                if inside { -d2.sqrt() } else { d2.sqrt() }
            }
            Sdf::Union(a, b) => fmin(a.dist(p), b.dist(p)),
            Sdf::Subtract(a, b) => fmax(a.dist(p), -b.dist(p)),
            Sdf::Intersect(a, b) => fmax(a.dist(p), b.dist(p)),
        }
    }

    /// Bounding box `[x0, y0, x1, y1]` of the inside.
    pub fn bounds(&self) -> [f32; 4] {
        match self {
            Sdf::Circle { c, r } => [c[0] - r, c[1] - r, c[0] + r, c[1] + r],
            Sdf::Ellipse { c, r } => [c[0] - r[0], c[1] - r[1], c[0] + r[0], c[1] + r[1]],
            Sdf::RoundBox { c, half, .. } => [c[0] - half[0], c[1] - half[1], c[0] + half[0], c[1] + half[1]],
            Sdf::Capsule { a, b, r } => {
                [a[0].min(b[0]) - r, a[1].min(b[1]) - r, a[0].max(b[0]) + r, a[1].max(b[1]) + r]
            }
            Sdf::Polygon(edges) => edges.iter().fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, e| {
                [b[0].min(e.v[0]), b[1].min(e.v[1]), b[2].max(e.v[0]), b[3].max(e.v[1])]
            }),
            Sdf::Union(a, b) => {
                let (a, b) = (a.bounds(), b.bounds());
                [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]
            }
            Sdf::Subtract(a, _) => a.bounds(),
            Sdf::Intersect(a, b) => {
                let (a, b) = (a.bounds(), b.bounds());
                [a[0].max(b[0]), a[1].max(b[1]), a[2].min(b[2]), a[3].min(b[3])]
            }
        }
    }
}

/// How a shape is coloured.
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    /// One colour.
    Solid(Rgb),
    /// From `a` at `from` to `b` at `to`, along the line between them.
    Linear {
        /// Colour at `from`.
        a: Rgb,
        /// Colour at `to`.
        b: Rgb,
        /// Start point.
        from: Vec2,
        /// End point.
        to: Vec2,
    },
}

/// A filled shape.
#[derive(Clone, Debug)]
pub struct Shape {
    sdf: Sdf,
    fill: Fill,
    alpha: f32,
    feather: f32,
    bounds: [f32; 4],
}

impl Shape {
    /// A shape with an anti-aliased edge one pixel wide.
    pub fn new(sdf: Sdf, fill: Fill) -> Self {
        let bounds = sdf.bounds();
        Self { sdf, fill, alpha: 1.0, feather: 1.0, bounds }
    }

    /// A shape of one colour.
    pub fn solid(sdf: Sdf, colour: Rgb) -> Self {
        Self::new(sdf, Fill::Solid(colour))
    }

    /// Overall opacity.
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Width of the soft edge in pixels (at least 1).
    pub fn feather(mut self, px: f32) -> Self {
        self.feather = px.max(1.0);
        self
    }
}

/// A layer of shapes painted in order.
pub struct Shapes {
    shapes: Vec<Shape>,
    width: usize,
}

impl Shapes {
    /// An empty layer for rows `width` pixels wide.
    pub fn new(width: usize) -> Self {
        Self { shapes: Vec::new(), width }
    }

    /// Add a shape on top.
    pub fn push(&mut self, shape: Shape) {
        self.shapes.push(shape);
    }
}

impl Layer for Shapes {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let py = y as f32 + 0.5;
        for shape in &self.shapes {
            let half = shape.feather * 0.5;
            let [bx0, by0, bx1, by1] = shape.bounds;
            if py < by0 - half - 1.0 || py > by1 + half + 1.0 {
                continue;
            }
            let x0 = (bx0 - half - 1.0).max(0.0) as usize;
            let x1 = ((bx1 + half + 2.0).max(0.0) as usize).min(self.width);
            let inv_feather = 1.0 / shape.feather;
            let mut x = x0;
            while x < x1 {
                let p = [x as f32 + 0.5, py];
                let d = shape.sdf.dist(p);
                let cover = (0.5 - d * inv_feather).clamp(0.0, 1.0) * shape.alpha;
                // Pixels closer than |d| - half share this pixel's full or empty coverage.
                let run = if d.abs() > half + 1.0 { (d.abs() - half) as i32 as usize } else { 1 };
                let end = (x + run).min(x1);
                if cover > 0.0 {
                    for (i, px) in row[x..end].iter_mut().enumerate() {
                        let colour = match shape.fill {
                            Fill::Solid(c) => c,
                            Fill::Linear { a, b, from, to } => {
                                let dir = sub(to, from);
                                let q = [(x + i) as f32 + 0.5 - from[0], py - from[1]];
                                mix(a, b, (dot(q, dir) / fmax(dot(dir, dir), 1e-12)).clamp(0.0, 1.0))
                            }
                        };
                        *px = mix(*px, colour, cover);
                    }
                }
                x = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_distance_signs() {
        let square = Sdf::polygon(&[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]);
        assert!((square.dist([5.0, 5.0]) + 5.0).abs() < 1e-5);
        assert!((square.dist([15.0, 5.0]) - 5.0).abs() < 1e-5);
        let reversed = Sdf::polygon(&[[0.0, 10.0], [10.0, 10.0], [10.0, 0.0], [0.0, 0.0]]);
        assert!((reversed.dist([5.0, 5.0]) + 5.0).abs() < 1e-5);
    }

    #[test]
    fn skipping_matches_brute_force() {
        let sdf = Sdf::Circle { c: [40.0, 20.0], r: 15.0 }.minus(Sdf::Circle { c: [48.0, 16.0], r: 12.0 });
        let mut layer = Shapes::new(100);
        layer.push(Shape::solid(sdf.clone(), [1.0, 0.0, 0.0]));
        for y in 0..40 {
            let mut row = vec![[0.0; 3]; 100];
            layer.paint(y, &mut row);
            for (x, px) in row.iter().enumerate() {
                let d = sdf.dist([x as f32 + 0.5, y as f32 + 0.5]);
                let want = (0.5 - d).clamp(0.0, 1.0);
                assert!((px[0] - want).abs() < 1e-6, "({x},{y}) {} vs {want}", px[0]);
            }
        }
    }
}
