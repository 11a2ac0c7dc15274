-- Schema version 2 to 3: workflow definitions.
CREATE TABLE wf_definitions (
    workflow  TEXT NOT NULL,
    hash      BIGINT NOT NULL,
    version   BIGINT NOT NULL,
    canonical TEXT NOT NULL,          -- Definition::canonical: what the hash covers
    PRIMARY KEY (workflow, hash)
);
