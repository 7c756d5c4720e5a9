-- DKIM signing keys, one per sending domain: mail whose From domain has a key is signed with it.
-- The private key is kept as PKCS#8 PEM; anyone who can read this table can sign as the domain,
-- so it gets the protection the database file gets.
CREATE TABLE dkim_keys (
    domain TEXT PRIMARY KEY,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
