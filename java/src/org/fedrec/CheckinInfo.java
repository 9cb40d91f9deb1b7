package org.fedrec;

/** The outcome of the last check-in (fr_checkin_info). */
public final class CheckinInfo {
    /** fr_checkin_status values. */
    public static final int IDLE = 0, RUNNING = 1, CONTRIBUTED = 2,
            NOT_SELECTED = 3, FAILED = 4, MODEL_ONLY = 5;

    public final int status;
    public final long round;
    public final long modelVersion;
    /** With NOT_SELECTED (or RUNNING): when to come back. */
    public final int retryAfterMs;
    public final long bytesUp;
    public final long bytesDown;

    CheckinInfo(int status, long round, long modelVersion, int retryAfterMs,
            long bytesUp, long bytesDown) {
        this.status = status;
        this.round = round;
        this.modelVersion = modelVersion;
        this.retryAfterMs = retryAfterMs;
        this.bytesUp = bytesUp;
        this.bytesDown = bytesDown;
    }
}
