package commitlog

// Disk guard: a background goroutine reads the usage of the file system
// holding the commitlog every DiskCheckInterval, after retention deleted
// files, and on demand (CheckWritable, when the last reading is over 50 ms
// old). Above DiskMaxUsedSpaceRatio it first deletes expired segments
// regardless of deleteWhen; if usage stays above, Append is refused with
// ErrDiskFull until a later check finds space again.
// Reads are never refused.

import (
	"fmt"
	"math"
	"time"
)

func (l *Log) diskLoop() {
	t := time.NewTicker(l.cfg.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.diskKick:
		}
		l.checkDisk()
	}
}

// checkDisk refreshes the disk-full state and returns it.
func (l *Log) checkDisk() error {
	l.diskAt.Store(time.Since(processStart).Nanoseconds())
	u, err := l.cfg.DiskUsage(l.cfg.CommitLogDir)
	if err != nil {
		l.logger.Warn("disk usage check failed", "err", err)
		return l.diskErr()
	}
	ratio := float64(l.cfg.DiskMaxUsedSpaceRatio) / 100
	if u > ratio {
		n, err := l.runRetention(true)
		if err != nil {
			l.logger.Error("forced retention", "err", err)
		}
		if n > 0 {
			if u2, err := l.cfg.DiskUsage(l.cfg.CommitLogDir); err == nil {
				u = u2
			}
		}
	}
	l.diskUsage.Store(math.Float64bits(u))
	full := u > ratio
	if was := l.diskFull.Swap(full); was != full {
		if full {
			l.logger.Warn("disk full, refusing appends", "usage_percent", u*100, "ratio", l.cfg.DiskMaxUsedSpaceRatio)
		} else {
			l.logger.Info("disk usage back below the limit, appends resume", "usage_percent", u*100)
		}
	}
	return l.diskErr()
}

// diskErr is the cached disk-full state as an error.
func (l *Log) diskErr() error {
	if !l.diskFull.Load() {
		return nil
	}
	u := math.Float64frombits(l.diskUsage.Load())
	return fmt.Errorf("%w: usage %.1f%% above diskMaxUsedSpaceRatio %d%%", ErrDiskFull, u*100, l.cfg.DiskMaxUsedSpaceRatio)
}
