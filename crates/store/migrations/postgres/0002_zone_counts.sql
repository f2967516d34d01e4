-- Daily counts of active (in DNS) and registered servers per zone, like the
-- pool's zone_server_counts: one row per zone and UTC day, updated during
-- the day by the service.
CREATE TABLE zone_server_counts (
    zone_name TEXT NOT NULL,
    day BIGINT NOT NULL,
    v4_active BIGINT NOT NULL,
    v4_registered BIGINT NOT NULL,
    v6_active BIGINT NOT NULL,
    v6_registered BIGINT NOT NULL,
    PRIMARY KEY (zone_name, day)
);
