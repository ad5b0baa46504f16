package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
)

// commandFlags are the flags the command name registers.
func commandFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("rfnet-native "+name, pflag.ContinueOnError)
	commands[name].setup(fs)
	return fs
}

// wantAdvice checks that flagAdvice keeps err (errors.Is still finds it) and
// adds want to its message.
func wantAdvice(t *testing.T, err error, command, want string) {
	t.Helper()
	got := flagAdvice(err, commandFlags(command))
	if !errors.Is(got, err) || !strings.HasPrefix(got.Error(), err.Error()) || !strings.Contains(got.Error(), want) {
		t.Fatalf("%s: %v, want %v with %q", command, got, err, want)
	}
}

// The Hub client names its own timeout; the user is told the flag: download's
// own, or from the other commands (which take the environment's), download's.
func TestTimeoutAdviceNamesTheFlag(t *testing.T) {
	for _, c := range []struct{ field, env, flag string }{
		{"EtagTimeout", "HF_HUB_ETAG_TIMEOUT", "--etag-timeout"},
		{"DownloadTimeout", "HF_HUB_DOWNLOAD_TIMEOUT", "--download-timeout"},
	} {
		t.Run(c.field, func(t *testing.T) {
			err := fmt.Errorf("hub: org/name: giving up after 4 tries: %w",
				&hub.TimeoutError{Request: "GET https://huggingface.co/org/name", Limit: 10 * time.Second, Field: c.field, Env: c.env})
			wantAdvice(t, err, "download", "; "+c.flag+" sets it")
			for _, command := range []string{"generate", "bench", "inspect", "tokenize"} {
				wantAdvice(t, err, command, "; rfnet-native download "+c.flag+" sets it for a download")
			}
		})
	}
}

// Errors flagAdvice knows nothing about, and nil, pass through unchanged.
func TestOtherErrorsKeepTheirMessage(t *testing.T) {
	plain := errors.New("pipeline: something else")
	if got := flagAdvice(plain, commandFlags("generate")); got != plain {
		t.Fatalf("%v, want the error unchanged", got)
	}
	if got := flagAdvice(nil, commandFlags("generate")); got != nil {
		t.Fatalf("%v, want nil", got)
	}
}
