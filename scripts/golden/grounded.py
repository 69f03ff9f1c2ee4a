"""`grounded_output`: long answers that copy the input (quote, redline, fill a record).

These are where prompt-lookup speculative decoding has something to win: most output n-grams
already sit in the prompt. max_new_tokens is set per item from the reference length (96-160).
"""
import re

from golden.common import chunk, item, output_budget
from golden.json_docs import record_item

POLICY = ("Data Protection Policy of Juniper Arc Health", [
    ("Purpose", "This policy explains how Juniper Arc Health collects, stores and shares personal data about "
     "patients, staff and suppliers, and who is responsible for each step."),
    ("Retention", "Patient records are kept for eight years after the last appointment. Staff records are kept "
     "for six years after employment ends. Records are then destroyed securely by an approved contractor, who "
     "issues a certificate of destruction for every batch."),
    ("Breaches", "Any member of staff who suspects a data breach must report it to the privacy officer within "
     "24 hours, even if the facts are not yet clear. The privacy officer decides within 72 hours whether the "
     "regulator and the affected people must be told, and keeps a written record of that decision."),
    ("Access requests", "A patient may ask for a copy of their records at any time. The request is answered "
     "within one month and free of charge, unless it is plainly excessive, in which case a reasonable fee may "
     "be charged after the patient has been told the amount."),
])
HANDBOOK = ("Travel and Expenses Handbook of Dunmore Civil Works", [
    ("Booking", "All travel is booked through the company travel desk at least ten working days before "
     "departure. Economy class is used for flights under six hours; premium economy may be booked for longer "
     "flights with the approval of a director."),
    ("Hotels", "Hotel stays are limited to $180 per night in most cities and $240 per night in London, New York "
     "and Tokyo. Staff who choose a more expensive hotel pay the difference themselves, and the difference is "
     "never reimbursed through another expense line."),
    ("Meals", "Meals on business trips are reimbursed up to $65 per day with itemised receipts. Alcohol is not "
     "reimbursed, except at client dinners approved in advance by a director, and tips above fifteen percent "
     "are not reimbursed."),
])
QUOTES = [(POLICY, 2), (POLICY, 3), (HANDBOOK, 2), (HANDBOOK, 3)]   # (document, section number)

REDLINES = [
    ("Supplier", "Vendor", "The Supplier shall deliver the goods to the Customer's site in Leeds in the quantities "
     "set out in each order. The Supplier bears the risk of loss until the goods are unloaded, and the Supplier "
     "shall replace any damaged goods within five working days at its own cost. If the Supplier cannot meet a "
     "delivery date, it shall tell the Customer in writing at least two days in advance."),
    ("the Customer", "the Client", "Invoices are sent to the Customer at the end of each month. the Customer "
     "shall pay each invoice within thirty days, and the Customer may withhold only the disputed part of an "
     "invoice. Interest on late payments is charged at two percent above the base rate until the Customer pays "
     "in full."),
    ("Contractor", "Service Provider", "The Contractor shall keep the site clean and safe at all times. The "
     "Contractor is responsible for the conduct of its staff and subcontractors, and the Contractor shall "
     "remove from the site any person whom the Owner reasonably asks to be removed. The Contractor shall not "
     "store fuel on the site without the Owner's written consent."),
]

RECORDS = [
    ("Fill a vendor record from the registration form.", [
        "Vendor registration form. Company name: Pike Hollow Mills LLC. Registered address: 310 Riverside Drive, "
        "Macon, GA 31201. Contact: Nadia Ferro, procurement lead. Email: nadia.ferro@pikehollow.example. "
        "Phone: +1 478 555 0142. Tax ID: 58-2291047. Bank: First Macon Savings."],
     {"company_name": "Pike Hollow Mills LLC", "address": "310 Riverside Drive, Macon, GA 31201",
      "contact_name": "Nadia Ferro", "email": "nadia.ferro@pikehollow.example", "phone": "+1 478 555 0142",
      "tax_id": "58-2291047"}),
    ("Fill a patient appointment record from the referral letter.", [
        "Referral letter. Patient: Felix Umber, date of birth 1979-05-14, patient number PN-772013. Referred by "
        "Dr. Amara Diallo of Pemberton Clinics to the cardiology department at Harbour General Hospital. "
        "Reason: intermittent chest pain on exertion. Appointment booked for 2024-08-22 at 10:30."],
     {"patient_name": "Felix Umber", "date_of_birth": "1979-05-14", "patient_number": "PN-772013",
      "referring_doctor": "Dr. Amara Diallo", "department": "cardiology", "appointment_date": "2024-08-22"}),
    ("Fill an asset register entry from the delivery note.", [
        "Delivery note DN-19044 from Redfern Tooling. Asset: CNC milling machine, model Redfern VM-850, serial "
        "number RVM850-22-0917. Delivered to Building C, Bay 3 of the Saltbridge Media print works on "
        "2024-06-03. Received by Hideo Marsh."],
     {"asset": "CNC milling machine", "model": "Redfern VM-850", "serial_number": "RVM850-22-0917",
      "location": "Building C, Bay 3", "delivery_date": "2024-06-03", "received_by": "Hideo Marsh"}),
]


def _quote(i: int, doc, n: int) -> dict:
    title, sections = doc
    chunks = [chunk(f"s{k + 1}", f"Section {k + 1} ({h}). {body}", title) for k, (h, body) in enumerate(sections)]
    heading, body = sections[n - 1]
    return item(f"grounded-{i:02d}", "grounded_output", f"Quote section {n} ({heading}) of the {title} verbatim.",
                [body], "f1", chunks, [f"s{n}"], instruction="Copy the section text exactly, without its heading.",
                max_new_tokens=output_budget(body), meta={"task": "quote"})


def _redline(i: int, old: str, new: str, text: str) -> dict:
    answer = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return item(f"grounded-{i:02d}", "grounded_output",
                f"Rewrite the paragraph, replacing every '{old}' with '{new}'.", [answer], "f1",
                [chunk("p1", text, "terms-and-conditions")], ["p1"],
                instruction="Output the whole rewritten paragraph and change nothing else.",
                max_new_tokens=output_budget(answer), meta={"task": "redline", "replace": [old, new]})


def build(rng) -> list[dict]:
    items = [_quote(i + 1, doc, n) for i, (doc, n) in enumerate(QUOTES)]
    items += [_redline(len(items) + i + 1, *r) for i, r in enumerate(REDLINES)]
    for q, paras, rec in RECORDS:
        fields = {k: "string" for k in rec}
        it = record_item(f"grounded-{len(items) + 1:02d}", "grounded_output", q, paras, rec, fields,
                         "forms", max_new_tokens=96)
        it["meta"] = {"task": "record"}
        items.append(it)
    return items
