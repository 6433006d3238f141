-- Published phone configurations (issue 14): COCOA's configuration.json and
-- risk_calculation_configuration.json as published, with who published them and
-- the simulation report they came with. Append-only: a version is never
-- overwritten or deleted (the triggers refuse it).
CREATE TABLE exposure_configurations (
    version INTEGER PRIMARY KEY,
    configuration_json TEXT NOT NULL,
    risk_calculation_json TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    simulation_report TEXT
);
CREATE TRIGGER exposure_configurations_no_update BEFORE UPDATE ON exposure_configurations
BEGIN SELECT RAISE(ABORT, 'published configurations are append-only'); END;
CREATE TRIGGER exposure_configurations_no_delete BEFORE DELETE ON exposure_configurations
BEGIN SELECT RAISE(ABORT, 'published configurations are append-only'); END;
