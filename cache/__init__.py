"""The contact directory: one contact cache in Firestore shared by every instance."""
