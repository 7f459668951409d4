package raftlog

import (
	"fmt"
	"log/slog"
)

const (
	// DefaultSegmentSize is the size at which the active segment is rolled when
	// Options.SegmentSize is zero.
	DefaultSegmentSize int64 = 64 << 20
	// MinSegmentSize is the smallest accepted Options.SegmentSize.
	MinSegmentSize int64 = 1 << 10
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// SegmentSize is the size in bytes past which the active segment is sealed and a new
	// one started. A single StoreLogs batch is never split, so a segment can exceed it by
	// up to one batch. Zero means DefaultSegmentSize.
	SegmentSize int64

	// NoSync skips the fdatasync after each StoreLogs: entries are then in the page cache
	// when StoreLogs returns and reach the disk at the next Sync or Close, or when the
	// background seals the segment they are in after it rolled. Truncations and deletions
	// are always synced whatever NoSync says, because recovery relies on their order (see
	// doc.go).
	NoSync bool

	// Logger receives recovery and maintenance events. Nil means slog.Default().
	Logger *slog.Logger

	// syncHook, if set, is called before every fsync with the step it belongs to (tests).
	// It may be called from the background goroutine.
	syncHook func(syncOp)
}

// Validate reports whether the options can be used. Zero values are valid (they mean the
// defaults).
func (o Options) Validate() error {
	if o.SegmentSize < 0 {
		return fmt.Errorf("raftlog: SegmentSize %d is negative", o.SegmentSize)
	}
	if o.SegmentSize != 0 && o.SegmentSize < MinSegmentSize {
		return fmt.Errorf("raftlog: SegmentSize %d is below the minimum %d", o.SegmentSize, MinSegmentSize)
	}
	return nil
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
