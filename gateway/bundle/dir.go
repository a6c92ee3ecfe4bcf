package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// partIDPattern is the manifest schema's PartID pattern. It admits no path
// separator, no leading dot and nothing outside ASCII, so a part ID is always
// a plain file name.
var partIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_\-]{0,79}(\.[A-Za-z0-9]{1,8})?$`)

// ValidPartID reports whether id is a well-formed part ID.
func ValidPartID(id string) bool { return partIDPattern.MatchString(id) }

// Dir is a bundle in its on-disk form: a directory holding manifest.xml and
// one file per part, named by the part ID. Files are opened through os.Root,
// so nothing outside the directory can be reached, not even through a
// symbolic link.
type Dir struct {
	Path string
	root *os.Root
}

// OpenDir opens a bundle directory.
func OpenDir(path string) (*Dir, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle directory: %w", err)
	}
	return &Dir{Path: path, root: r}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// ReadManifest reads manifest.xml, refusing more than limit bytes.
func (d *Dir) ReadManifest(limit int64) ([]byte, error) {
	return d.readFile(ManifestFile, limit)
}

// ReadAcceptance reads acceptance.xml (present in a fetched bundle), or
// returns an error satisfying errors.Is(err, fs.ErrNotExist).
func (d *Dir) ReadAcceptance(limit int64) ([]byte, error) {
	return d.readFile(AcceptanceFile, limit)
}

func (d *Dir) readFile(name string, limit int64) ([]byte, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errs.E(errs.TooLarge, "xml.too_large", "%s is larger than %d bytes", name, limit).InPart(name)
	}
	return b, nil
}

// Open opens a part file by its ID.
func (d *Dir) Open(id string) (io.ReadCloser, error) {
	if !ValidPartID(id) {
		return nil, errs.E(errs.Invalid, "part.id", "not a valid part ID").InPart(clip(id))
	}
	f, err := d.root.Open(id)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("part %s is not a regular file", id)
	}
	return f, nil
}

// PartSource is a part to be written into a new bundle directory.
type PartSource struct {
	ID        string
	Kind      Kind
	MediaType string
	Write     func(w io.Writer) error
}

// WriteDir writes a new bundle into dir (created if needed): every part
// file, then manifest.xml for m with the part entries (sizes and SHA-256)
// computed from the bytes written. sign, if not nil, turns the unsigned
// manifest document into the signed one. Files are written to temporary
// names and renamed, so a crash leaves no half-written manifest.
func WriteDir(dir string, m *Manifest, parts []PartSource, sign func([]byte) ([]byte, error)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m.Parts = m.Parts[:0]
	for _, ps := range parts {
		if !ValidPartID(ps.ID) {
			return fmt.Errorf("invalid part ID %q", ps.ID)
		}
		h := sha256.New()
		var n int64
		err := writeFileAtomic(filepath.Join(dir, ps.ID), func(w io.Writer) error {
			cw := &countWriter{w: io.MultiWriter(w, h)}
			err := ps.Write(cw)
			n = cw.n
			return err
		})
		if err != nil {
			return fmt.Errorf("write part %s: %w", ps.ID, err)
		}
		m.Parts = append(m.Parts, Part{ID: ps.ID, Kind: ps.Kind, MediaType: ps.MediaType, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	doc, err := m.Document()
	if err != nil {
		return err
	}
	if sign != nil {
		if doc, err = sign(doc); err != nil {
			return fmt.Errorf("sign manifest: %w", err)
		}
	}
	return WriteFileAtomic(filepath.Join(dir, ManifestFile), doc)
}

// WriteFileAtomic writes data to path through a temporary file and a rename.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// IsNotExist reports whether err means a file is absent.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
