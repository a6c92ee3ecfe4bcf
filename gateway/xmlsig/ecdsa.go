package xmlsig

import (
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
)

// rawECDSAToDER converts a base64 XML-DSig ECDSA SignatureValue (r||s, each
// the size of the curve's order, RFC 4051 section 3.3) into base64 ASN.1 DER,
// the form crypto/x509 (and so goxmldsig) verifies. Anything else, including
// a DER value, is an error: the standard form is the only one accepted.
func rawECDSAToDER(b64 string, pub *ecdsa.PublicKey) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	n := (pub.Curve.Params().N.BitLen() + 7) / 8
	if len(raw) != 2*n {
		return "", errors.New("wrong length for r||s")
	}
	r := new(big.Int).SetBytes(raw[:n])
	s := new(big.Int).SetBytes(raw[n:])
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
