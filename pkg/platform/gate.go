package platform

// Mirrors reports whether the objects of target id may be mirrored now:
// Allowed, or Unknown after an answer that allowed (mirror.Gate).
func (c *Checker) Mirrors(id string) bool { return c.Decision(id).MayRead() }

// Revoked reports whether the management cluster denied the use of target
// id, so that what was mirrored of it must be forgotten (mirror.Gate).
func (c *Checker) Revoked(id string) bool { return c.Decision(id).State == Denied }
