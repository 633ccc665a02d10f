package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/statustrace/statustrace/internal/schema"
)

// The migration lock serializes migrators: a fleet of collectors starting
// at once all run Up, and a migration that rebuilds a table (version 3)
// checks state and then acts on it, which two migrators must not do at
// the same time. Creating a table is atomic (it fails when the table
// exists), so the lock is a table: Memory engine, no rows, the holder and
// its lease in the table comment. A holder that died leaves the lock until
// its lease ends; then the next migrator takes it over by renaming it to a
// name derived from the dead holder, which only one can do.
//
// The lock lives on the server Up talks to. In cluster mode migrators that
// reach different nodes are not serialized by it: upgrade the schema once
// (statustrace migrate) before rolling out collectors, or let them reach
// one node.

const lockTable = schema.Migrations + "_lock"

// lockLease is how long a lock is honoured when the context has no
// deadline.
const lockLease = 10 * time.Minute

// errLockHeld is returned when the lock could not be had before the
// context ended (held by another migrator, or the server too slow to say):
// the caller retries later.
var errLockHeld = errors.New("the schema migration lock was not had in time")

// lock takes the migration lock, waiting while another live migrator holds
// it, and returns its release.
func (o Options) lock(ctx context.Context, conn Conn) (release func(), err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	lease := time.Now().Add(lockLease)
	if d, ok := ctx.Deadline(); ok {
		lease = d.Add(time.Minute) // our statements are cancelled before it ends
	}
	create := "CREATE TABLE " + o.qualified(lockTable) + " (held UInt8) ENGINE = Memory COMMENT '" +
		owner + " " + strconv.FormatInt(lease.Unix(), 10) + "'"
	for {
		err := conn.Exec(ctx, create)
		if err == nil {
			return func() {
				// A fresh context: release even when ctx has ended.
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if o.lockOwner(rctx, conn) == owner {
					_ = conn.Exec(rctx, "DROP TABLE IF EXISTS "+o.qualified(lockTable))
				}
			}, nil
		}
		if ctx.Err() != nil {
			// The context ended while we asked (a slow or busy server): the
			// lock was not had in time, which the caller retries like a
			// held lock.
			return nil, fmt.Errorf("%w: gave up before the server answered: %w", errLockHeld, ctx.Err())
		}
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || proto.Error(ex.Code) != proto.ErrTableAlreadyExists {
			return nil, fmt.Errorf("take the migration lock: %w", err)
		}
		holder, until := o.readLock(ctx, conn)
		if holder != "" && time.Now().After(until) {
			// The holder's lease ended: only one migrator can rename the
			// lock to this name, so only one takes it over.
			stale := o.qualified(lockTable + "_stale_" + holder)
			if conn.Exec(ctx, "RENAME TABLE "+o.qualified(lockTable)+" TO "+stale) == nil {
				_ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+stale)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: another migrator holds it (%s, until %s)", errLockHeld, holder, until.UTC().Format(time.RFC3339))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readLock returns the lock's holder and lease end ("" when there is no
// lock or it cannot be read).
func (o Options) readLock(ctx context.Context, conn Conn) (string, time.Time) {
	var rows []struct {
		Comment string `ch:"comment"`
	}
	if err := conn.Select(ctx, &rows, "SELECT comment FROM system.tables WHERE database = ? AND name = ?", o.Database, lockTable); err != nil || len(rows) != 1 {
		return "", time.Time{}
	}
	owner, until, _ := strings.Cut(rows[0].Comment, " ")
	sec, err := strconv.ParseInt(until, 10, 64)
	if err != nil {
		return owner, time.Time{} // unreadable lease: treat as ended
	}
	return owner, time.Unix(sec, 0)
}

func (o Options) lockOwner(ctx context.Context, conn Conn) string {
	owner, _ := o.readLock(ctx, conn)
	return owner
}
