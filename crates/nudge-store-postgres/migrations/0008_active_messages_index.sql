-- The same migration as SQLite's 0008, so both backends keep the same names in the same order;
-- PostgreSQL's 0002 already indexes only the active messages in due order.
SELECT 1;
