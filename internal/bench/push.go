package bench

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/bundle"
)

// Body streams the manifest and every part as multipart/related, exactly
// as `gwctl push` does (cmd/gwctl/online.go, multipartBody): the manifest
// first with Content-ID <manifest.xml>, then each part in manifest order with
// its part ID as Content-ID, through a pipe, so no part is ever held whole.
func (b *Bundle) Body(manifest []byte) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			h := textproto.MIMEHeader{}
			h.Set("Content-Type", "application/xml")
			h.Set("Content-ID", "<"+bundle.ManifestFile+">")
			w, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := w.Write(manifest); err != nil {
				return err
			}
			for _, p := range b.Manifest.Parts {
				h := textproto.MIMEHeader{}
				h.Set("Content-Type", p.MediaType)
				h.Set("Content-ID", "<"+p.ID+">")
				w, err := mw.CreatePart(h)
				if err != nil {
					return err
				}
				f, err := b.Open(p.ID)
				if err != nil {
					return err
				}
				_, err = io.Copy(w, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, "multipart/related; boundary=" + mw.Boundary() + `; type="application/xml"`
}

// Push sends one bundle with its signed manifest and reads the receipt. It
// fails unless the gateway answers 201 Created (a new bundle): 200 would be
// an identical resend, which costs the gateway nothing and measures nothing.
func Push(ctx context.Context, cl *client.Client, b *Bundle, manifest []byte) error {
	body, ct := b.Body(manifest)
	resp, err := cl.Post(ctx, "/v1/bundles", ct, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push answered %s, want 201 Created (a new bundle)", resp.Status)
	}
	return nil
}
