package promsink

import (
	"bytes"
	"os"
	"runtime"
	runtimemetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	metrics "github.com/armon/go-metrics"
)

// started approximates the process start (package initialisation runs first thing).
var started = time.Now()

// runtimeSamples are the runtime/metrics read at every scrape, with the names client_golang
// gives them (or the nearest MemStats name).
var runtimeSamples = []struct {
	key, name, typ, help string
}{
	{"/memory/classes/heap/objects:bytes", "go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects."},
	{"/memory/classes/total:bytes", "go_memstats_sys_bytes", "gauge", "Bytes of memory obtained from the OS."},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "gauge", "Heap size target for the end of the GC cycle."},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "counter", "Completed GC cycles."},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "gauge", "The current runtime.GOMAXPROCS setting."},
}

// RuntimeCollector reports the Go runtime and process metrics Prometheus users expect
// (go_goroutines, go_threads, go_info, go_memstats_heap_alloc_bytes, go_memstats_sys_bytes,
// go_gc_heap_goal_bytes, go_gc_cycles_total, go_sched_gomaxprocs_threads,
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds), read when the sink is
// written, as float64. The process_* memory and fd figures come from /proc (Linux) and are
// left out where it is missing.
func RuntimeCollector() Collector {
	threads := pprof.Lookup("threadcreate")
	return func(add func(Metric)) {
		add(Metric{Name: "go_goroutines", Help: "Number of goroutines that currently exist.", Type: "gauge", Value: float64(runtime.NumGoroutine())})
		add(Metric{Name: "go_threads", Help: "Number of OS threads created.", Type: "gauge", Value: float64(threads.Count())})
		add(Metric{Name: "go_info", Help: "Information about the Go environment.", Type: "gauge",
			Labels: []metrics.Label{{Name: "version", Value: runtime.Version()}}, Value: 1})
		samples := make([]runtimemetrics.Sample, len(runtimeSamples))
		for i, r := range runtimeSamples {
			samples[i].Name = r.key
		}
		runtimemetrics.Read(samples)
		for i, r := range runtimeSamples {
			var v float64
			switch samples[i].Value.Kind() {
			case runtimemetrics.KindUint64:
				v = float64(samples[i].Value.Uint64())
			case runtimemetrics.KindFloat64:
				v = samples[i].Value.Float64()
			default:
				continue // not supported by this Go version
			}
			add(Metric{Name: r.name, Help: r.help, Type: r.typ, Value: v})
		}

		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
			cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
			add(Metric{Name: "process_cpu_seconds_total", Help: "Total user and system CPU time spent in seconds.", Type: "counter", Value: cpu})
		}
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			if f := bytes.Fields(b); len(f) >= 2 {
				page := float64(os.Getpagesize())
				if v, err := strconv.ParseFloat(string(f[0]), 64); err == nil {
					add(Metric{Name: "process_virtual_memory_bytes", Help: "Virtual memory size in bytes.", Type: "gauge", Value: v * page})
				}
				if v, err := strconv.ParseFloat(string(f[1]), 64); err == nil {
					add(Metric{Name: "process_resident_memory_bytes", Help: "Resident memory size in bytes.", Type: "gauge", Value: v * page})
				}
			}
		}
		if d, err := os.Open("/proc/self/fd"); err == nil {
			names, err := d.Readdirnames(-1)
			d.Close()
			if err == nil {
				add(Metric{Name: "process_open_fds", Help: "Number of open file descriptors.", Type: "gauge", Value: float64(len(names) - 1)}) // minus the one reading
			}
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
			add(Metric{Name: "process_max_fds", Help: "Maximum number of open file descriptors.", Type: "gauge", Value: float64(rl.Cur)})
		}
		add(Metric{Name: "process_start_time_seconds", Help: "Start time of the process since the Unix epoch in seconds.", Type: "gauge",
			Value: float64(started.UnixNano()) / 1e9})
	}
}
