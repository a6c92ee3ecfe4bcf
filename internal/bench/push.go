package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/rehabgw/rehabgw/client"
)

// Body streams the manifest and every part as multipart/related, exactly
// as `gwctl push` does (client.BundleBody), so no part is ever held whole.
func (b *Bundle) Body(manifest []byte) (io.Reader, string) {
	parts := make([]client.BodyPart, len(b.Manifest.Parts))
	for i, p := range b.Manifest.Parts {
		parts[i] = client.BodyPart{ID: p.ID, MediaType: p.MediaType, Open: func() (io.ReadCloser, error) { return b.Open(p.ID) }}
	}
	return client.BundleBody(manifest, parts, nil)
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
