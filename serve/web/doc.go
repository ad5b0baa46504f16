// Package web is the page of rfnet-native serve: plain HTML, CSS and
// JavaScript modules embedded in the binary, with no build step and nothing
// loaded from elsewhere, so the page works offline and behind a firewall.
//
// The page drives the server's HTTP API (docs/serve-api.md) from the browser:
// it plans a layout, lets the user correct the boxes and descriptions, submits
// the RFNet job, follows its events and shows its files. This package only
// serves the files; package serve mounts Handler and answers the API.
package web
