// Package web is the page of rfnet-native serve: plain HTML, CSS and
// JavaScript modules embedded in the binary, with no build step and nothing
// loaded from elsewhere, so the page works offline and behind a firewall.
//
// The page drives the server's HTTP API (docs/serve-api.md) from the browser:
// it plans a layout, lets the user correct the boxes and descriptions, submits
// the RFNet job, follows its events and shows its files. This package only
// serves the files; package serve mounts Handler and answers the API.
//
// The files, one concern each: index.html (every element the scripts look up
// by id); static/app.js wires the forms to the API; api.js sends requests,
// with the API key once a 401 has asked for it (kept in sessionStorage);
// events.js reads a job's server-sent events; editor.js is the plan editor
// (the boxes over the 512×512 canvas, one form per object); job.js a job's
// progress and pictures; jobs.js the list of past jobs; dom.js the helpers
// that put an API error next to the field its param names; page.css the
// page's look over the project's shared stylesheet (internal/htmlstyle,
// served as /static/htmlstyle.css).
//
// Keyboard: every box is in the tab order after the Plan button; arrows move
// the focused box, shift+arrows resize it, Delete removes it; every other
// control is a labelled form control or button.
//
// The Go tests check the files without a browser: the types
// and CSP of every file, 404s, that no file names a URL elsewhere, and that
// each id the scripts use exists. serve/browser_test.go drives the page in
// Chromium against the real server.
package web
