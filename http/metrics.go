package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	authDenied *prometheus.CounterVec
	// rateLimited counts 429s by the limit reached (not by organization,
	// which would let the label set grow without bound).
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_http_requests_total", Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palisade_http_request_duration_seconds", Help: "HTTP request latency by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"route", "method"}),
		authDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_authentication_denied_total", Help: "Requests refused with 401, by reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_rate_limited_total", Help: "Requests refused with 429, by the limit reached.",
		}, []string{"limit"}),
	}
	reg.MustRegister(m.requests, m.duration, m.authDenied, m.rateLimited)
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// methodOther stands for every method methodLabel does not name.
const methodOther = "OTHER"

// methodLabel is a request's method as metrics, the access log and span
// names show it: a standard method, or methodOther. A client may send any
// token as its method, before it authenticates and up to the header
// limit; as a label value, each new one would be a new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return methodOther
}
