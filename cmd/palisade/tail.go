package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/palisadehq/palisade/bus/kafka"
)

// tail is the reference downstream consumer: it prints the events of
// Kafka topics as JSON lines, one envelope per line.
func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", env("PALISADE_KAFKA_BROKERS", ""), "comma-separated Kafka brokers")
	group := fs.String("group", "", "consumer group (empty: read everything, commit nothing)")
	var topics stringList
	fs.Var(&topics, "topic", "topic to read (repeatable), e.g. palisade.bot or palisade.<org>.bot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers == "" || len(topics) == 0 {
		return errors.New("tail: --brokers and at least one --topic are required")
	}
	return kafka.Tail(ctx, splitList(*brokers), topics, *group, stdout)
}

type stringList []string

func (l *stringList) String() string { return fmt.Sprint(*l) }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
