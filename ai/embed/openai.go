package embed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/palisadehq/palisade/ai/internal/endpoint"
)

// OpenAIConfig configures an [OpenAI] embedder. Zero values of the optional
// fields mean the documented defaults.
type OpenAIConfig struct {
	// BaseURL is the endpoint's root, with or without a trailing "/v1":
	// "https://api.openai.com", "http://localhost:11434" (Ollama),
	// "http://vllm:8000/v1". Requests go to {BaseURL}/v1/embeddings.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer …" when set. It never
	// appears in an error.
	APIKey string
	// Model is the model name the endpoint serves. Required.
	Model string
	// Dimensions is the vector size the model returns; every response is
	// checked against it. Required: Palisade's index has a fixed size.
	Dimensions int
	// SendDimensions asks the endpoint to shorten its vectors to
	// Dimensions (the "dimensions" request field, which OpenAI's
	// text-embedding-3 models accept). Leave it off for endpoints whose
	// model natively returns Dimensions: some reject the field.
	SendDimensions bool
	// Timeout bounds each HTTP attempt. Default 30s.
	Timeout time.Duration
	// BatchSize is the most texts sent in one request; larger inputs are
	// split. Default 64.
	BatchSize int
	// MaxResponseBytes bounds one response body. Default: room for a full
	// batch at about 24 bytes per number, plus 1 MiB.
	MaxResponseBytes int64
	// MaxRetries is how many times a request is retried after HTTP 408,
	// 429, 5xx or a transport error. Default 3; negative means none.
	MaxRetries int
	// RetryBaseDelay is the first backoff, doubled on each retry with
	// jitter. Default 500ms.
	RetryBaseDelay time.Duration
	// MaxRetryDelay caps a backoff, including one asked for by a
	// Retry-After header. Default 10s.
	MaxRetryDelay time.Duration
	// HTTPClient sends the requests. Default: a client that follows no
	// redirects, so the API key is only ever sent to BaseURL's host.
	HTTPClient *http.Client
}

// OpenAI embeds texts with an OpenAI-compatible embeddings endpoint,
// reached with the openai-go client: POST {base}/v1/embeddings with
// {"model", "input", "encoding_format": "float"}. The vectors it returns
// are L2-normalised here, since not every server normalises them (Ollama
// and llama.cpp models may not). Retries are its own, not the client's, so
// that MaxRetryDelay caps a server's Retry-After instead of giving up.
type OpenAI struct {
	cfg        OpenAIConfig
	embeddings openai.EmbeddingService
}

// NewOpenAI validates cfg and returns an embedder. It makes no request.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.Model == "" {
		return nil, errors.New("embed: OpenAI config: Model is required")
	}
	if cfg.Dimensions <= 0 {
		return nil, errors.New("embed: OpenAI config: Dimensions must be positive")
	}
	opts, err := endpoint.ClientOptions(cfg.BaseURL, cfg.APIKey, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("embed: OpenAI config: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = int64(cfg.BatchSize)*int64(cfg.Dimensions)*24 + 1<<20
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = 500 * time.Millisecond
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = 10 * time.Second
	}
	// The options ask for no retries: embedBatch makes its own, so that
	// MaxRetryDelay caps a server's Retry-After. The service, unlike
	// openai.NewClient, reads no OPENAI_* variables.
	return &OpenAI{cfg: cfg, embeddings: openai.NewEmbeddingService(opts...)}, nil
}

// Model is the configured model name.
func (o *OpenAI) Model() string { return o.cfg.Model }

// Dimensions is the configured vector size.
func (o *OpenAI) Dimensions() int { return o.cfg.Dimensions }

// Embed sends texts in batches of at most BatchSize, one batch after the
// other, and returns the vectors in the order of texts. Some endpoints
// refuse an empty string as input.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += o.cfg.BatchSize {
		batch := texts[start:min(start+o.cfg.BatchSize, len(texts))]
		vecs, err := o.embedBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (o *OpenAI) embedBatch(ctx context.Context, batch []string) ([][]float32, error) {
	params := openai.EmbeddingNewParams{
		Model:          o.cfg.Model,
		Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: batch},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
	}
	if o.cfg.SendDimensions {
		params.Dimensions = openai.Int(int64(o.cfg.Dimensions))
	}
	for attempt := 0; ; attempt++ {
		vecs, retryAfter, err := o.attempt(ctx, params, len(batch))
		if err == nil {
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("embed: %w", ctx.Err())
		}
		if retryAfter < 0 || attempt >= o.cfg.MaxRetries {
			if attempt > 0 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, err
		}
		delay := o.backoff(attempt, retryAfter)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("embed: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// attempt sends one request. retryAfter is negative when the error is not
// worth retrying, zero when it is and the server named no delay, and the
// server's Retry-After otherwise.
func (o *OpenAI) attempt(ctx context.Context, params openai.EmbeddingNewParams, n int) (vecs [][]float32, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	ex := &exchange{o: o}
	parsed, err := o.embeddings.New(ctx, params, option.WithMiddleware(ex.middleware))
	if err != nil {
		retryAfter, err := ex.failure(err)
		return nil, retryAfter, err
	}
	if parsed == nil || !parsed.JSON.Data.Valid() || len(parsed.Data) != n {
		got := 0
		if parsed != nil {
			got = len(parsed.Data)
		}
		return nil, -1, fmt.Errorf("%w: %d embeddings for %d inputs", ErrMalformedResponse, got, n)
	}
	vecs = make([][]float32, n)
	for _, d := range parsed.Data {
		if !d.JSON.Index.Valid() || d.Index < 0 || d.Index >= int64(n) || vecs[d.Index] != nil {
			return nil, -1, fmt.Errorf("%w: missing, out-of-range or repeated index", ErrMalformedResponse)
		}
		// The client decodes a base64 string too; floats were asked for,
		// and anything else is not what this server should send.
		if !d.JSON.Embedding.Valid() || !strings.HasPrefix(d.JSON.Embedding.Raw(), "[") {
			return nil, -1, fmt.Errorf("%w: embedding at index %d is not a list of numbers", ErrMalformedResponse, d.Index)
		}
		if len(d.Embedding) != o.cfg.Dimensions {
			return nil, -1, fmt.Errorf("%w: got %d, configured %d (model %q)", ErrDimensions, len(d.Embedding), o.cfg.Dimensions, o.cfg.Model)
		}
		v := make([]float32, len(d.Embedding))
		for i, x := range d.Embedding {
			v[i] = float32(x)
		}
		if !normalize(v) {
			return nil, -1, fmt.Errorf("%w: zero-length embedding at index %d", ErrMalformedResponse, d.Index)
		}
		vecs[d.Index] = v
	}
	return vecs, 0, nil
}

// exchange watches one attempt's HTTP exchange below the client: it turns
// a non-2xx answer into a [StatusError] with the server's Retry-After,
// bounds the body, and remembers whether a 2xx answer arrived, which is
// what tells a broken response from a failed request.
type exchange struct {
	o          *OpenAI
	responded  bool
	retryAfter time.Duration
	body       *endpoint.LimitedBody
}

func (e *exchange) middleware(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		return nil, &StatusError{StatusCode: resp.StatusCode, Message: endpoint.ErrorMessage(resp.Body, e.o.cfg.APIKey)}
	}
	e.responded = true
	// The endpoint answers JSON however it labels it; the client decodes
	// only what is labelled so.
	resp.Header.Set("Content-Type", "application/json")
	e.body = endpoint.NewLimitedBody(resp.Body, e.o.cfg.MaxResponseBytes, ErrResponseTooLarge)
	resp.Body = e.body
	return resp, nil
}

// failure turns an error of the client into one of ours, with the
// retryAfter of attempt.
func (e *exchange) failure(err error) (time.Duration, error) {
	var serr *StatusError
	switch {
	case errors.As(err, &serr):
		if !serr.Retryable() {
			return -1, serr
		}
		return e.retryAfter, serr
	case errors.Is(err, ErrResponseTooLarge):
		return -1, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, e.o.cfg.MaxResponseBytes)
	case e.body != nil && e.body.ReadErr() != nil:
		// The connection broke while the body arrived: worth retrying.
		return 0, fmt.Errorf("embed: reading response: %s", endpoint.Redact(e.body.ReadErr().Error(), e.o.cfg.APIKey))
	case e.responded:
		return -1, fmt.Errorf("%w: %s", ErrMalformedResponse, endpoint.Redact(err.Error(), e.o.cfg.APIKey))
	}
	// Transport errors (refused, reset, attempt timeout) are retried; the
	// error text names the URL, which holds no credentials.
	return 0, fmt.Errorf("embed: request failed: %s", endpoint.Redact(err.Error(), e.o.cfg.APIKey))
}

func (o *OpenAI) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, o.cfg.MaxRetryDelay)
	}
	d := o.cfg.RetryBaseDelay << min(attempt, 20)
	d = min(d, o.cfg.MaxRetryDelay)
	// Full jitter in [d/2, d): clients that failed together retry apart.
	return d/2 + rand.N(d/2+1)
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
