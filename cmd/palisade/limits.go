package main

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/palisadehq/palisade/quota"
)

// Defaults of serve's per-organization quotas: generous for one tenant,
// small enough that one tenant cannot take a 2-core server from the others.
const (
	defaultOrgRequestsPerSecond = 100
	defaultOrgRequestBurst      = 200
	defaultOrgConcurrentUploads = 4
	// defaultOrgConcurrentPDFParses is the most, see orgPDFParses.
	defaultOrgConcurrentPDFParses = 2
	defaultOrgConcurrentTurns     = 8
	defaultOrgModelTokensPerHour  = 2_000_000
	defaultOrgMaxBots             = 1_000
	defaultOrgMaxKnowledgeBases   = 100
	defaultOrgMaxDocuments        = 100_000
)

// limitFlags are serve's flags of quotas and denial coalescing.
type limitFlags struct {
	requestsPerSecond, burst, uploads, pdfParses, pdfParsers *string
	turns, modelTokens                                       *string
	maxBots, maxKBs, maxDocs, denialWindow                   *string
}

func addLimitFlags(fs *flag.FlagSet) *limitFlags {
	str := func(name, variable, def, usage string) *string {
		return fs.String(name, env(variable, def), usage+" ("+variable+")")
	}
	return &limitFlags{
		requestsPerSecond: str("org-requests-per-second", "PALISADE_ORG_REQUESTS_PER_SECOND", itoa(defaultOrgRequestsPerSecond), "requests per second each organization may send; 0 is unlimited"),
		burst:             str("org-request-burst", "PALISADE_ORG_REQUEST_BURST", itoa(defaultOrgRequestBurst), "requests an organization may send at once above its rate"),
		uploads:           str("org-concurrent-uploads", "PALISADE_ORG_CONCURRENT_UPLOADS", itoa(defaultOrgConcurrentUploads), "document uploads an organization may have in progress; 0 is unlimited"),
		pdfParses:         str("org-concurrent-pdf-parses", "PALISADE_ORG_CONCURRENT_PDF_PARSES", itoa(orgPDFParses(runtime.NumCPU())), "PDF parses an organization may have running; 0 is unlimited"),
		pdfParsers:        str("pdf-parsers", "PALISADE_PDF_PARSERS", itoa(runtime.NumCPU()), "PDF parser processes running at once across all organizations; 0 is unlimited"),
		turns:             str("org-concurrent-turns", "PALISADE_ORG_CONCURRENT_TURNS", itoa(defaultOrgConcurrentTurns), "bot turns an organization may have running; 0 is unlimited"),
		modelTokens:       str("org-model-tokens-per-hour", "PALISADE_ORG_MODEL_TOKENS_PER_HOUR", itoa(defaultOrgModelTokensPerHour), "model tokens (prompt and completion) an organization may use per hour; 0 is unlimited"),
		maxBots:           str("org-max-bots", "PALISADE_ORG_MAX_BOTS", itoa(defaultOrgMaxBots), "bots an organization may keep (archived ones do not count); 0 is unlimited"),
		maxKBs:            str("org-max-knowledge-bases", "PALISADE_ORG_MAX_KNOWLEDGE_BASES", itoa(defaultOrgMaxKnowledgeBases), "knowledge bases an organization may keep; 0 is unlimited"),
		maxDocs:           str("org-max-documents", "PALISADE_ORG_MAX_DOCUMENTS", itoa(defaultOrgMaxDocuments), "documents an organization may keep; 0 is unlimited"),
		denialWindow:      str("denial-window", "PALISADE_DENIAL_WINDOW", "1m", "how long repeated denials of one principal for one permission are summed into one event"),
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// orgPDFParses is the default of --org-concurrent-pdf-parses on a host of
// cpus CPUs, where --pdf-parsers defaults to cpus: at most half of the
// parsers, so that one organization's slow PDFs never hold them all, and
// at least one.
func orgPDFParses(cpus int) int {
	return max(1, min(defaultOrgConcurrentPDFParses, cpus/2))
}

// parse returns the default quotas, the deployment's PDF parser cap and the
// denial window.
func (f *limitFlags) parse() (quota.Limits, int, time.Duration, error) {
	var l quota.Limits
	var parsers int
	var err error
	count := func(name, v string, dst *int) {
		if err != nil {
			return
		}
		n, e := strconv.Atoi(v)
		if e != nil || n < 0 {
			err = fmt.Errorf("--%s: want a count ≥ 0, got %q", name, v)
			return
		}
		*dst = n
	}
	rps, e := strconv.ParseFloat(*f.requestsPerSecond, 64)
	if e != nil || rps < 0 {
		return l, 0, 0, fmt.Errorf("--org-requests-per-second: want a rate ≥ 0, got %q", *f.requestsPerSecond)
	}
	l.RequestsPerSecond = rps
	count("org-request-burst", *f.burst, &l.RequestBurst)
	count("org-concurrent-uploads", *f.uploads, &l.ConcurrentUploads)
	count("org-concurrent-pdf-parses", *f.pdfParses, &l.ConcurrentPDFParses)
	count("pdf-parsers", *f.pdfParsers, &parsers)
	count("org-concurrent-turns", *f.turns, &l.ConcurrentTurns)
	count("org-model-tokens-per-hour", *f.modelTokens, &l.ModelTokensPerHour)
	count("org-max-bots", *f.maxBots, &l.MaxBots)
	count("org-max-knowledge-bases", *f.maxKBs, &l.MaxKnowledgeBases)
	count("org-max-documents", *f.maxDocs, &l.MaxDocuments)
	if err != nil {
		return l, 0, 0, err
	}
	window, e := time.ParseDuration(*f.denialWindow)
	if e != nil || window < time.Second {
		return l, 0, 0, fmt.Errorf("--denial-window: want a duration of at least 1s, got %q", *f.denialWindow)
	}
	return l, parsers, window, nil
}
