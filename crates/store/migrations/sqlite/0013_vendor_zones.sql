-- Issue 17: vendor zones (`debian.<zone>`, `0.debian.<zone>`–`3.debian.<zone>`),
-- as the NTP Pool gives them to operating systems. Each answers as the zone
-- it names: `@` (the apex) or a continent or country zone (`europe`, `de`),
-- by name rather than a key into `zones` because `admin vendor add` may run
-- before `serve` has seeded that table; the admin command checks the name
-- against the zone tree. `name` is one lower-case DNS label (checked there
-- too, as are clashes with the zone's own names).
CREATE TABLE vendor_zones (
    name TEXT PRIMARY KEY,
    zone TEXT NOT NULL DEFAULT '@',
    note TEXT NOT NULL DEFAULT '',
    created_on INTEGER NOT NULL
);
