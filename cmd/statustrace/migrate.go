package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/queries"
)

func (a *app) migrateCmd() *cobra.Command {
	var (
		opts          migrate.Options
		views, dryRun bool
		status        bool
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the ClickHouse schema (versioned migrations) and install the views",
		Long: `Apply the schema migrations of exporter/migrate (the same ones the exporter
applies on start), keep the tables' TTL at --retention, then create or update
the parameterized views of the queries package. Safe to run again.`,
		Example: `  statustrace migrate --dsn http://127.0.0.1:8123 --database statustrace
  statustrace migrate --dsn clickhouse://ch:9000 --cluster main --retention 72h
  statustrace migrate --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dryRun {
				if opts.Database == "" {
					opts.Database = a.database
				}
				rs, err := migrate.Render(opts)
				if err != nil {
					return usagef("%v", err)
				}
				for _, r := range rs {
					fmt.Fprintf(a.stdout, "-- migration %d: %s\n", r.Version, r.Name)
					for _, q := range r.SQL {
						fmt.Fprintf(a.stdout, "%s;\n\n", q)
					}
				}
				if views {
					vs, err := queries.ViewStatements(queries.InstallOptions{Database: opts.Database, Cluster: opts.Cluster})
					if err != nil {
						return usagef("%v", err)
					}
					fmt.Fprintln(a.stdout, "-- views (queries.Install)")
					for _, q := range vs {
						fmt.Fprintf(a.stdout, "%s;\n\n", q)
					}
				}
				return nil
			}
			admin, db, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer admin.Close()
			opts.Database = db
			if status {
				applied, latest, err := migrate.Status(ctx, admin, opts)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return writeJSON(a.stdout, map[string]any{"database": db, "applied": applied, "latest": latest})
				}
				t := newTable(a.stdout, "VERSION", "NAME", "CHECKSUM")
				for _, m := range applied {
					t.row(fmt.Sprint(m.Version), m.Name, m.Checksum[:min(12, len(m.Checksum))])
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "this binary knows versions up to %d\n", latest)
				return nil
			}
			res, err := migrate.Up(ctx, admin, opts)
			if err != nil {
				return err
			}
			if views {
				conn, _, err := a.open(ctx, true)
				if err != nil {
					return err
				}
				defer conn.Close()
				if err := queries.Install(ctx, conn, queries.InstallOptions{Database: db, Cluster: opts.Cluster}); err != nil {
					return err
				}
			}
			if a.output == "json" {
				return writeJSON(a.stdout, map[string]any{"database": db, "applied": res.Applied, "version": res.Version, "retention_changed": res.RetentionChanged, "views": views})
			}
			fmt.Fprintf(a.stdout, "database %s at schema version %d (applied now: %v); retention %s", db, res.Version, res.Applied, opts.Retention)
			if res.RetentionChanged {
				fmt.Fprint(a.stdout, " (TTL updated)")
			}
			if views {
				fmt.Fprintf(a.stdout, "; %d views installed", len(queries.Views))
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Cluster, "cluster", "", "cluster name: ON CLUSTER DDL, Replicated and Distributed tables")
	durationVar(fl, &opts.Retention, "retention", 72*time.Hour, "how long data is kept and visible (whole seconds; e.g. 72h or 3d)")
	fl.StringVar(&opts.ReplicationPathPrefix, "replication-path-prefix", "", "Keeper path prefix of Replicated tables (default /clickhouse/statustrace)")
	fl.BoolVar(&views, "views", true, "also install the parameterized views")
	fl.BoolVar(&dryRun, "dry-run", false, "print the statements instead of running them")
	fl.BoolVar(&status, "status", false, "show the applied versions and change nothing")
	return cmd
}
