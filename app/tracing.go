package app

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is a tracer provider built from the environment and how to
// flush and stop it.
type Tracing struct {
	// Provider is nil when tracing is off: Config.TracerProvider takes it
	// as is.
	Provider trace.TracerProvider
	// Shutdown flushes the spans not yet exported and stops the exporter.
	Shutdown func(context.Context) error
}

// TracingFromEnv builds the tracer provider the standard OpenTelemetry
// environment variables describe. getenv (os.Getenv) chooses the exporter;
// the exporters and the SDK read the rest of the process environment
// themselves:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER unset, empty or
//     "none": tracing is off (Provider nil; nothing is started). Unlike the
//     specification's default (otlp), Palisade traces only when asked.
//   - OTEL_TRACES_EXPORTER=otlp: spans are batched and exported over OTLP,
//     with OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
//     "grpc" (the default) or "http/protobuf". The exporters read the rest
//     themselves: OTEL_EXPORTER_OTLP_ENDPOINT, …_TRACES_ENDPOINT, …_HEADERS,
//     …_TIMEOUT, …_COMPRESSION, …_CERTIFICATE, …_INSECURE.
//   - the SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
//     (parent-based always-on by default) and OTEL_BSP_* (batching);
//     OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource
//     (service.name "palisade" unless set).
//
// Any other exporter or protocol is an error: a misspelt setting must not
// silently turn tracing off.
func TracingFromEnv(ctx context.Context, getenv func(string) string) (Tracing, error) {
	off := Tracing{Shutdown: func(context.Context) error { return nil }}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return off, nil
	}
	switch exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exporter {
	case "", "none":
		return off, nil
	case "otlp":
	default:
		return off, fmt.Errorf("OTEL_TRACES_EXPORTER: want otlp or none, got %q", exporter)
	}
	protocol := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return off, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want grpc or http/protobuf, got %q", protocol)
	}
	if err != nil {
		return off, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default name.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "palisade")),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return off, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Tracing{Provider: tp, Shutdown: tp.Shutdown}, nil
}
