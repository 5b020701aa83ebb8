package doc

// A release travels as one OCI artifact (build/release pushes it, the
// node's upgrade module pulls from it): an OCI image manifest whose config
// (and artifactType) says "gridnode release", each layer one file of the
// release folder stored as it is and named by its TitleKey annotation (a
// slash-separated path). ReleaseName is one of them: the signed release
// document, which names every other file with its sha256.
const (
	ArtifactType  = "application/vnd.gridnode.release.v1+json"
	FileMediaType = "application/octet-stream"
	TitleKey      = "org.opencontainers.image.title"
)
