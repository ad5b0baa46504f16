package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
)

// timeoutFlags are download's flags for the Hub client's timeouts
// (hub.TimeoutError's Field); every other command takes them from the
// environment only.
var timeoutFlags = map[string]string{"EtagTimeout": "etag-timeout", "DownloadTimeout": "download-timeout"}

// flagAdvice adds to a command's error the flag that changes the setting the
// error is about: the libraries name their own settings (a Hub client's
// timeout), which the command line sets with flags. It names only flags fs,
// the command's flags, has, or says which command has them; any other error
// stays as it is. A library error that names a flag itself would be wrong for
// every caller but this command line.
func flagAdvice(err error, fs *pflag.FlagSet) error {
	has := func(name string) bool { return fs.Lookup(name) != nil }
	var timeout *hub.TimeoutError
	switch {
	case errors.As(err, &timeout) && timeoutFlags[timeout.Field] != "":
		name := timeoutFlags[timeout.Field]
		if has(name) {
			return fmt.Errorf("%w; --%s sets it", err, name)
		}
		return fmt.Errorf("%w; rfnet-native download --%s sets it for a download", err, name)
	}
	return err
}
