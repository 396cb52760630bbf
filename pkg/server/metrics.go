package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// newRegistry returns crproxy's own registry (not the global one, which
// k8s.io/apiserver's packages fill with metrics crproxy does not serve):
// the Go and process collectors, the request metrics, and the targets' and
// mirrors' state read from report at scrape time.
func newRegistry(report func() StatusReport, requests *requestMetrics) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statusCollector{report: report, now: time.Now},
	)
	requests.register(reg)
	return reg
}

// metricsHandler serves reg in the Prometheus exposition formats.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var (
	targetLabels   = []string{"target"}
	resourceLabels = []string{"target", "group", "version", "resource"}

	targetUpDesc = prometheus.NewDesc("crproxy_target_up",
		"1 when the target answers (Connected or Resyncing), 0 when it is Unreachable or Forbidden.",
		targetLabels, nil)
	targetStateDesc = prometheus.NewDesc("crproxy_target_state",
		"The target's connection state: 1 for the current state, 0 for the others.",
		[]string{"target", "state"}, nil)
	targetReconnectsDesc = prometheus.NewDesc("crproxy_target_reconnects_total",
		"Returns of the target from Unreachable or Forbidden since crproxy started.",
		targetLabels, nil)
	targetSinceEventDesc = prometheus.NewDesc("crproxy_target_seconds_since_last_event",
		"Seconds since the mirror last received a watch event or bookmark from the target; absent before the first.",
		targetLabels, nil)
	mirrorObjectsDesc = prometheus.NewDesc("crproxy_mirror_objects",
		"Objects in the mirror of a resource.",
		resourceLabels, nil)
	mirrorResourceVersionDesc = prometheus.NewDesc("crproxy_mirror_resource_version",
		"The target's resourceVersion the mirror of a resource is at (0 before its first sync).",
		resourceLabels, nil)
	mirrorSyncedDesc = prometheus.NewDesc("crproxy_mirror_synced",
		"1 when the mirror of a resource holds a complete state (listed from the target, or loaded from disk).",
		resourceLabels, nil)
	watchClientsDesc = prometheus.NewDesc("crproxy_watch_clients",
		"Watches open on the mirror of a resource.",
		resourceLabels, nil)
)

// statusCollector turns a StatusReport into metrics at scrape time, so a
// scrape sees the targets and caches as they are, with no bookkeeping on
// the paths that change them.
type statusCollector struct {
	report func() StatusReport
	now    func() time.Time
}

// Describe implements prometheus.Collector.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{targetUpDesc, targetStateDesc, targetReconnectsDesc, targetSinceEventDesc,
		mirrorObjectsDesc, mirrorResourceVersionDesc, mirrorSyncedDesc, watchClientsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	now := c.now()
	for _, t := range c.report().Targets {
		down := t.State == reconnect.Unreachable || t.State == reconnect.Forbidden
		gauge(targetUpDesc, boolValue(!down), t.Target)
		for _, s := range reconnect.States {
			gauge(targetStateDesc, boolValue(t.State == s), t.Target, string(s))
		}
		ch <- prometheus.MustNewConstMetric(targetReconnectsDesc, prometheus.CounterValue, float64(t.Reconnects), t.Target)
		if !t.LastEvent.IsZero() {
			gauge(targetSinceEventDesc, now.Sub(t.LastEvent).Seconds(), t.Target)
		}
		for _, r := range t.Resources {
			labels := []string{t.Target, r.Group, r.Version, r.Resource}
			// float64 holds resourceVersions exactly up to 2^53, far
			// beyond an etcd revision.
			rv, _ := strconv.ParseUint(r.ResourceVersion, 10, 64)
			gauge(mirrorObjectsDesc, float64(r.Objects), labels...)
			gauge(mirrorResourceVersionDesc, float64(rv), labels...)
			gauge(mirrorSyncedDesc, boolValue(r.Synced), labels...)
			gauge(watchClientsDesc, float64(r.Watchers), labels...)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
