// compose-check loads a Compose file the way `docker compose` does, with no Docker engine.
//
// It uses compose-go, the Compose specification's reference loader (the library inside
// `docker compose`): the file is validated against the official compose-spec JSON schema that
// compose-go embeds, then interpolated, normalised and checked for consistency (unknown
// services in depends_on, missing volumes or networks, …). On success it prints the resolved
// project as JSON, for tests to assert on; on failure it prints the loader's error and exits 1.
//
//	compose-check [-env NAME=VALUE ...] FILE   load, validate, print the project
//	compose-check -schema                      print the embedded compose-spec JSON schema
//
// Only the variables given with -env (and none of the caller's environment) are interpolated,
// so the result does not depend on the machine running it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/schema"
)

type envFlags []string

func (e *envFlags) String() string     { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	var env envFlags
	printSchema := flag.Bool("schema", false, "print the embedded compose-spec JSON schema")
	flag.Var(&env, "env", "NAME=VALUE to interpolate (repeatable)")
	flag.Parse()
	if *printSchema {
		fmt.Println(schema.Schema)
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env NAME=VALUE ...] FILE | -schema")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		flag.Args(),
		cli.WithEnv(env),
		cli.WithDiscardEnvFile,
		cli.WithConsistency(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
