package client

import (
	"io"
	"mime/multipart"
	"net/textproto"
)

// ManifestContentID is the Content-ID of the manifest in a push.
const ManifestContentID = "<manifest.xml>"

// BodyPart is one part of a bundle to push: its ID (sent as Content-ID), its
// media type, and how to open its bytes.
type BodyPart struct {
	ID        string
	MediaType string
	Open      func() (io.ReadCloser, error)
}

// BundleBody streams a bundle as the multipart/related body of POST
// /v1/bundles: the signed manifest first (Content-ID <manifest.xml>), then
// every part in order with its part ID as Content-ID. The body is produced
// through a pipe while it is sent, so no part is ever held whole in memory.
// progress, when not nil, is written every part byte (for a progress bar).
// It returns the body and the Content-Type to send with it.
func BundleBody(manifest []byte, parts []BodyPart, progress io.Writer) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeBundle(mw, manifest, parts, progress))
	}()
	return pr, "multipart/related; boundary=" + mw.Boundary() + `; type="application/xml"`
}

func writeBundle(mw *multipart.Writer, manifest []byte, parts []BodyPart, progress io.Writer) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", "application/xml")
	h.Set("Content-ID", ManifestContentID)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(manifest); err != nil {
		return err
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.MediaType)
		h.Set("Content-ID", "<"+p.ID+">")
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		f, err := p.Open()
		if err != nil {
			return err
		}
		dst := w
		if progress != nil {
			dst = io.MultiWriter(w, progress)
		}
		_, err = io.Copy(dst, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return mw.Close()
}
