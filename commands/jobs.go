package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/tracing"
)

// ActorResolver returns the principal an event's actor is now: its current
// roles (or live service account), narrowed by the token scope recorded on
// the event, or an error when it is no longer a member or live service
// account.
type ActorResolver interface {
	Current(ctx context.Context, orgID string, actor eventstore.Actor) (access.Principal, error)
}

// JobSpec says what job a process runs for one triggering event.
type JobSpec struct {
	// Kind names what the job does ("knowledge.ingestion").
	Kind string
	// Process is the subject of the process principal ("ingestion").
	Process string
	// Subject is the stream the job works on; Key tells apart the jobs of
	// one subject (a document version). The job's id derives from both, so
	// a redelivered trigger finds its job.
	Subject eventstore.StreamName
	Key     string
	// Grants are what the process may do for the invoker: its principal
	// holds grants ∩ the invoker's permissions now (access.Delegate).
	Grants access.PermissionSet
	// ActorGone is the refusal when the invoker is no longer a member or
	// live service account.
	ActorGone string
}

// JobRun is what a job's work is given.
type JobRun struct {
	// As is the process principal the work records its outcome as.
	As access.Principal
	// Decision is the re-authorization at execution time (zero if refused
	// before deciding).
	Decision access.Decision
	// Refusal, when set, says why the work must not be done: the work
	// records that on its subject and returns a failed outcome.
	Refusal string
}

// JobOutcome is how a job's work ended.
type JobOutcome struct {
	State  jobs.State // Succeeded, Failed or Cancelled
	Result string
	Items  int
	Reason string
}

// JobAuthorizer re-authorizes the invoker at execution time. A non-empty
// refusal stops the work; an error is a fault to retry (redelivery).
type JobAuthorizer func(ctx context.Context, invoker, as access.Principal) (d access.Decision, refusal string, err error)

// JobWork does a job's work and records its effect on the subject with the
// subject's expected version. It must be idempotent: after an interrupted
// attempt it runs again and must report the outcome already recorded.
type JobWork func(ctx context.Context, run JobRun) (JobOutcome, error)

// JobID returns the id of the job for (subject, key).
func JobID(subject eventstore.StreamName, key string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("job/"+subject.String()+"/"+key)).String()
}

// RunJob runs one job for trigger, crash-safe:
//
//  1. the invoker recorded on trigger is resolved as it is now, with the
//     token scope recorded on trigger, and re-authorized by authorize;
//  2. the job is submitted (once: its stream must not exist) and started
//     with the job stream's expected version; a job found running — an
//     earlier attempt was interrupted — is started again, or failed once
//     jobs.MaxAttempts attempts were made;
//  3. work runs with the process principal, built by access.Delegate;
//  4. the outcome is recorded with the job's expected version. A job found
//     finished does nothing: a redelivered trigger records nothing twice.
//
// An error leaves the job running; the caller returns it so that the
// trigger is redelivered and step 2 resumes it.
func (p *Pipeline) RunJob(ctx context.Context, trigger eventstore.Envelope, actors ActorResolver, spec JobSpec,
	authorize JobAuthorizer, work JobWork) (err error) {
	// A job run from a worker pool or resumed at start has no span of its
	// own: it continues the trace its trigger recorded.
	ctx = tracing.ContinueFrom(ctx, trigger.TraceID, trigger.SpanID)
	ctx, span := p.tracer.Start(ctx, "job "+spec.Kind, trace.WithAttributes(
		attribute.String("palisade.job.kind", spec.Kind),
		attribute.String("palisade.org_id", trigger.OrgID),
		attribute.String("palisade.trigger.type", trigger.Type),
	))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "job interrupted; its trigger will be redelivered")
		}
		span.End()
	}()
	ctx = WithOrigin(ctx, Origin{CorrelationID: trigger.CorrelationID, CausationID: trigger.ID.String(), TraceID: trigger.TraceID})
	id := JobID(spec.Subject, spec.Key)
	stream, err := eventstore.NewStreamName(jobs.Category, trigger.OrgID, id)
	if err != nil {
		return fmt.Errorf("job for %s: %w", spec.Subject, err)
	}

	var run JobRun
	invoker, err := actors.Current(ctx, trigger.OrgID, trigger.Actor)
	if errors.Is(err, tenancy.ErrClosed) {
		// A closed organization's work is dropped, unrecorded: nothing is
		// appended to it after its OrganizationClosed.
		return nil
	}
	if err != nil {
		// Whose authority the record names, holding nothing.
		invoker = access.Principal{
			Subject: trigger.Actor.Subject, Kind: access.Kind(trigger.Actor.Kind), OrgID: trigger.OrgID,
			OnBehalfOf: trigger.Actor.OnBehalfOf, CreatedBy: trigger.Actor.CreatedBy,
		}
		run.Refusal = spec.ActorGone
	}
	run.As = access.Delegate(invoker, access.KindProcess, spec.Process, spec.Grants)
	if run.Refusal == "" {
		if run.Decision, run.Refusal, err = authorize(ctx, invoker, run.As); err != nil {
			return fmt.Errorf("job %s: authorize: %w", stream, err)
		}
	}

	newJob := func() aggregate { return &jobs.Job{} }
	finished := false
	_, err = p.execute(ctx, run.As, run.Decision, stream, newJob, func(a aggregate) ([]domain.Event, error) {
		job := a.(*jobs.Job)
		finished = job.State().Terminal()
		if finished {
			return nil, nil
		}
		var evs []domain.Event
		if job.State() == "" {
			submitted, err := job.Submit(id, spec.Kind, spec.Subject.String(), trigger.ID.String())
			if err != nil {
				return nil, err
			}
			job.Apply(submitted[0])
			evs = submitted
		}
		started, err := job.Start()
		if errors.Is(err, jobs.ErrAttemptsExhausted) {
			// Still run the work, refused, so the subject records the failure.
			run.Refusal = fmt.Sprintf("the job was interrupted %d times", job.Attempts())
			return evs, nil
		}
		if err != nil {
			return nil, err
		}
		return append(evs, started...), nil
	})
	if err != nil {
		return fmt.Errorf("job %s: start: %w", stream, err)
	}
	if finished {
		return nil
	}

	began := time.Now()
	outcome, err := work(ctx, run)
	if p.observer != nil {
		state := string(outcome.State)
		if err != nil {
			state = "error"
		} else if outcome.State != jobs.Succeeded && outcome.State != jobs.Cancelled {
			state = string(jobs.Failed)
		}
		p.observer.JobDone(spec.Kind, state, time.Since(began))
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", stream, err)
	}
	_, err = p.execute(ctx, run.As, run.Decision, stream, newJob, func(a aggregate) ([]domain.Event, error) {
		job := a.(*jobs.Job)
		if job.State().Terminal() {
			return nil, nil
		}
		switch outcome.State {
		case jobs.Succeeded:
			return job.Succeed(outcome.Result, outcome.Items)
		case jobs.Cancelled:
			return job.Cancel(outcome.Reason)
		default:
			return job.Fail(outcome.Reason)
		}
	})
	if err != nil {
		return fmt.Errorf("job %s: record outcome: %w", stream, err)
	}
	return nil
}
