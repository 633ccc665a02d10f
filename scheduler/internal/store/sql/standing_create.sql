-- Migration 2: account standing (arrears, suspended) per tenant, shared by
-- every node. namespace '' is the whole tenant.
CREATE TABLE statustrace_scheduler_standing (
	tenant     text NOT NULL,
	namespace  text NOT NULL,
	standing   text NOT NULL,
	updated_at timestamp NOT NULL,
	PRIMARY KEY (tenant, namespace)
)
