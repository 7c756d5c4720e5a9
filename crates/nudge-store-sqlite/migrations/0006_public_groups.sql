-- A public group is a list contacts may leave on their preference page ("newsletters").
ALTER TABLE groups ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
