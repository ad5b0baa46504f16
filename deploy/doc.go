// Package deploy holds no code: it is where the deployment files are checked.
// The files are the Dockerfile (and .dockerignore) at the repository root and
// the Kubernetes manifests in deploy/k8s: the benchmark's Indexed Job and its
// volumes, and the Deployment, Service and PodDisruptionBudget of
// `rfnet-native serve`.
//
// Neither can be built or applied where the tests run (no Docker engine, no
// cluster), so the tests check them offline: every manifest document decodes
// strictly into its Kubernetes API type (k8s.io/api; an unknown or misspelled
// field fails), the references between the documents hold (selectors, port
// names, claims, secrets documented in README.md), the serve Deployment
// agrees with serve's flags and with the image, and the Dockerfile has the
// shape the manifests and the Makefile expect.
package deploy
