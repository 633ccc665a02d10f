INSERT INTO statustrace_scheduler_standing (tenant, namespace, standing, updated_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, namespace) DO UPDATE SET standing = excluded.standing, updated_at = excluded.updated_at
