-- Run once by the postgres image when its data volume is empty (/docker-entrypoint-initdb.d/), as
-- POSTGRES_USER, connected to POSTGRES_DB (the warehouse). One server, one database per store:
-- MLflow and Dagster each keep an alembic_version table, so they cannot share one.
CREATE DATABASE app;      -- ODDLY_APP_DATABASE_URL: decisions (audit), outbox, subscriptions, scores
CREATE DATABASE dagster;  -- ODDLY_DAGSTER_PG_URL: Dagster runs, event log, schedules and sensors
CREATE DATABASE mlflow;   -- ODDLY_MLFLOW_TRACKING_URI: MLflow tracking and model registry
