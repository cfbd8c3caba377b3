//! The incident pages: what `flashpoint report` writes as static files and the notify stage serves live at
//! `/incidents` and `/incidents/{id}`. One renderer for both: [`store`] groups spike events by incident in
//! bounded memory, [`html`] renders the index and each incident's page (pure, escaped, no script), [`chart`]
//! draws the incident's series as inline SVG. Serving them (HTTP, the access token) is the binary's; the token
//! is compared by [`crate::secret::Secret::matches`].

pub mod chart;
pub mod html;
pub mod store;

pub use html::{incident, index, not_found, policy, Links};
pub use store::{Incident, IncidentStore, Logged, Refused, SharedStore};
