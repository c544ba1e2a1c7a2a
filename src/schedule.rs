//! Scheduling a campaign run: SOAP `scheduleCampaign`, REST `schedule.json`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::request::{CampaignTarget, ProgramToken};

/// A validated request to schedule a (batch) campaign run, with tokens.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use marketo_campaign::{CampaignTarget, ProgramToken, ScheduleRequest};
/// let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
/// let request = ScheduleRequest::new(
///     CampaignTarget::named("Monthly Newsletter", "Newsletters", [ProgramToken::new("{{my.Month}}", "December")?]),
///     Some(at),
/// )?;
/// assert_eq!(request.tokens().len(), 1);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    target: CampaignTarget,
    run_at: Option<DateTime<Utc>>,
}

impl ScheduleRequest {
    /// A schedule request; `run_at: None` lets Marketo pick (REST: in five
    /// minutes; SOAP: now). Tokens come with a named target.
    pub fn new(target: CampaignTarget, run_at: Option<DateTime<Utc>>) -> Result<Self, Error> {
        target.validate()?;
        Ok(ScheduleRequest { target, run_at })
    }

    /// The campaign.
    pub fn target(&self) -> &CampaignTarget {
        &self.target
    }

    /// When to run it.
    pub fn run_at(&self) -> Option<DateTime<Utc>> {
        self.run_at
    }

    /// The program tokens.
    pub fn tokens(&self) -> &[ProgramToken] {
        self.target.tokens()
    }
}

/// A schedule that was accepted, and by which backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub(crate) backend: String,
    pub(crate) id: Option<String>,
}

impl Scheduled {
    /// The backend that accepted it: `soap`, `rest` or `ajo`.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The id the backend gave the schedule or run, when it gives one:
    /// Adobe Journey Optimizer's `scheduleId` (a scheduled execution) or
    /// `executionId` (one that runs now). `None` for SOAP and REST.
    ///
    /// ```
    /// use marketo_sandbox::Sandbox;
    /// use marketo_campaign::{CampaignScheduler, CampaignTarget, ScheduleRequest};
    /// let sandbox = Sandbox::start()?;
    /// // Marketo's batch campaign 5000, mapped to an AJO audience campaign, at once.
    /// let scheduled = sandbox.ajo_client()?.schedule_campaign(&ScheduleRequest::new(CampaignTarget::id(5000), None)?)?;
    /// assert_eq!(scheduled.backend(), "ajo");
    /// assert_eq!(scheduled.id(), sandbox.journal()[0].ajo.as_ref().map(|e| e.execution_id.as_str()));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// The sibling of [`CampaignRequester`](crate::CampaignRequester) for
/// scheduled runs. Implemented by the SOAP, REST and AJO clients and by
/// [`Fallback`](crate::Fallback).
pub trait CampaignScheduler: Send + Sync + fmt::Debug + fmt::Display {
    /// Schedules the campaign.
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error>;
}

impl<T: CampaignScheduler + ?Sized> CampaignScheduler for &T {
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        (**self).schedule_campaign(request)
    }
}

impl<T: CampaignScheduler + ?Sized> CampaignScheduler for Box<T> {
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        (**self).schedule_campaign(request)
    }
}

impl<T: CampaignScheduler + ?Sized> CampaignScheduler for Arc<T> {
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        (**self).schedule_campaign(request)
    }
}
