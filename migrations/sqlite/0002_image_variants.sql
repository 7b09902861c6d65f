-- Variants (original / cropped / transparent), edit lineage, and the style and archetype used.
ALTER TABLE images ADD COLUMN variants_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE images ADD COLUMN parent_id TEXT;
ALTER TABLE images ADD COLUMN style TEXT;
ALTER TABLE images ADD COLUMN archetype TEXT;
