-- Issue 15: `poolwatch policy replay --save` keeps its report here for the
-- admin page (`/manage/admin/policy-reports`). The report is the JSON the
-- CLI prints with `--format json`; the page renders it, nothing queries
-- inside it.
CREATE TABLE policy_reports (
    id BIGSERIAL PRIMARY KEY,
    created BIGINT NOT NULL,
    from_ts BIGINT NOT NULL,
    to_ts BIGINT NOT NULL,
    policies TEXT NOT NULL,
    report TEXT NOT NULL
);
