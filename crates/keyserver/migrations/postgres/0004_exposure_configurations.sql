-- Published phone configurations (issue 14): COCOA's configuration.json and
-- risk_calculation_configuration.json as published, with who published them and
-- the simulation report they came with. Append-only: a version is never
-- overwritten or deleted (the trigger refuses it).
CREATE TABLE exposure_configurations (
    version BIGINT PRIMARY KEY,
    configuration_json TEXT NOT NULL,
    risk_calculation_json TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    simulation_report TEXT
);
CREATE FUNCTION exposure_configurations_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'published configurations are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exposure_configurations_append_only
    BEFORE UPDATE OR DELETE ON exposure_configurations
    FOR EACH ROW EXECUTE FUNCTION exposure_configurations_append_only();
