use super::*;
use tokio::time::Instant;

#[test]
fn no_more_places_than_the_bound_are_reserved_at_once() {
    let admission = Admission::new(10, None);
    admission.counted(7, Duration::ZERO, 0);
    let places: Vec<_> = (0..100).filter_map(|_| admission.reserve().ok()).collect();
    assert_eq!(places.len(), 3);
    assert_eq!(admission.reserve().err(), Some(10));
}

#[test]
fn a_place_is_given_back_unless_an_order_was_created() {
    let admission = Admission::new(2, None);
    let failed = admission.reserve().unwrap();
    let created = admission.reserve().unwrap();
    drop(failed);
    created.keep();
    // One order is PENDING now; one place is left.
    let last = admission.reserve().unwrap();
    assert!(admission.reserve().is_err());
    drop(last);
    assert_eq!(admission.lock().taken(), 1);
}

#[test]
fn a_count_replaces_the_orders_created_before_it_began() {
    let admission = Admission::new(100, None);
    admission.reserve().unwrap().keep();
    let began_at = admission.lock().created_total;
    admission.reserve().unwrap().keep(); // created while the count ran
    admission.counted(1, Duration::ZERO, began_at); // the count saw only the first
    assert_eq!(admission.lock().taken(), 2);
    let total = admission.lock().created_total;
    admission.counted(0, Duration::ZERO, total); // both ended since
    assert_eq!(admission.lock().taken(), 0);
}

#[tokio::test]
async fn a_post_without_a_place_gets_one_freed_by_the_next_count() {
    let admission = Admission::new(10, None);
    admission.counted(10, Duration::ZERO, 0);
    let waiting = tokio::spawn({
        let admission = admission.clone();
        async move {
            admission
                .reserve_within(ADMISSION_WAIT)
                .await
                .map(Place::keep)
                .is_ok()
        }
    });
    tokio::time::sleep(ADMISSION_WAIT / 4).await;
    admission.counted(9, Duration::ZERO, 0);
    assert!(waiting.await.unwrap(), "the freed place was not taken");
    // With nothing freed, the wait ends without a place, and not much later.
    let started = Instant::now();
    assert_eq!(
        admission
            .reserve_within(ADMISSION_WAIT)
            .await
            .err()
            .map(|refused| refused.taken),
        Some(10)
    );
    assert!(started.elapsed() < ADMISSION_WAIT * 3);
}

/// Lets the spawned POSTs run until `count` of them wait for a place.
async fn parked(admission: &Admission, count: usize) {
    for _ in 0..100 {
        if admission.lock().waiting.len() >= count {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{count} POSTs did not start waiting");
}

#[tokio::test]
async fn waiting_posts_are_admitted_first_come_first_served_before_new_arrivals() {
    let admission = Admission::new(2, None);
    admission.counted(2, Duration::ZERO, 0);
    let long = Duration::from_secs(10);
    let first = tokio::spawn({
        let admission = admission.clone();
        async move { admission.reserve_within(long).await.map(Place::keep) }
    });
    parked(&admission, 1).await;
    let second = tokio::spawn({
        let admission = admission.clone();
        async move { admission.reserve_within(long).await.map(Place::keep) }
    });
    parked(&admission, 2).await;

    // One order ended: its place goes to the first waiter, not to a POST arriving now.
    admission.counted(1, Duration::ZERO, 0);
    assert!(
        admission.reserve().is_err(),
        "a new arrival took the place a waiting POST was owed"
    );
    first.await.unwrap().expect("the first waiter is admitted");
    assert!(!second.is_finished(), "the second waiter still waits");

    // The next place goes to the second, still ahead of newcomers.
    let total = admission.lock().created_total;
    admission.counted(1, Duration::ZERO, total);
    second
        .await
        .unwrap()
        .expect("the second waiter is admitted");
    assert_eq!(admission.reserve().err(), Some(2));
}

#[tokio::test]
async fn a_waiter_that_gave_up_holds_no_one_back() {
    let admission = Admission::new(1, None);
    admission.counted(1, Duration::ZERO, 0);
    assert!(
        admission
            .reserve_within(Duration::from_millis(10))
            .await
            .is_err()
    );
    admission.counted(0, Duration::ZERO, 0);
    assert!(
        admission.reserve().is_ok(),
        "the place is free for the next POST"
    );
}
