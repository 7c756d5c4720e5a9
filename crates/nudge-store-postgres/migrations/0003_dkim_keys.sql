-- DKIM signing keys, one per sending domain: mail whose From domain has a key is signed with it.
-- The same schema as SQLite's 0003_dkim_keys.sql, in native types.
CREATE TABLE dkim_keys (
    domain text PRIMARY KEY,
    selector text NOT NULL,
    algorithm text NOT NULL,
    private_key_pem text NOT NULL,
    created_at timestamptz NOT NULL
);
